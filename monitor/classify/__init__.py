"""Text -> sentiment + advocacy. The only package that imports transformers, torch or
onnxruntime (and only lazily, inside the engines, so the CLI starts fast).

Contract: ``classify(texts)`` takes a batch and returns one Classification per text, in
order, never raising for a bad text (empty, huge, binary junk): such texts come back
marked (``status``, ``uncertain``) so no mention waits forever.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from monitor.errors import ModelError
from monitor.records import Classification


@runtime_checkable
class Classifier(Protocol):
    name: str  # name@version, stored on every classification row

    def classify(self, texts: Sequence[str]) -> list[Classification]: ...


def resolve_model(model: str, base_dir: Path) -> str:
    """A local folder (relative to the config's folder, then to the working folder) or,
    when no such folder exists, the string as given (a Hugging Face hub id)."""
    for candidate in (base_dir / model, Path(model)):
        if candidate.is_dir():
            return str(candidate.resolve())
    if model.startswith((".", "/", "~")) or Path(model).suffix:
        raise ModelError(f"model folder {model!r} does not exist")
    return model


def build_classifier(settings, base_dir: Path, cache_dir: Path | None = None) -> Classifier:
    """The engine named in config: ``onnx`` (int8, fast default) or ``torch``."""
    model = resolve_model(settings.model, base_dir)
    if settings.engine == "onnx":
        from monitor.classify.onnx_engine import OnnxClassifier

        return OnnxClassifier(model, cache_dir=cache_dir, threads=settings.threads, batch_size=settings.batch_size,
                              uncertain_below=settings.uncertain_below, languages=settings.languages)
    from monitor.classify.torch_engine import TorchClassifier

    return TorchClassifier(model, threads=settings.threads, batch_size=settings.batch_size,
                           uncertain_below=settings.uncertain_below, languages=settings.languages)


def current_model_name(settings, base_dir: Path) -> str | None:
    """``name@version`` of the configured model without loading it (a two-head folder's
    monitor.json); None when only loading tells (a hub id, another kind of folder)."""
    from monitor.classify.folder import is_two_head_folder, model_name, read_meta

    try:
        model = resolve_model(settings.model, base_dir)
        return model_name(read_meta(model)) if is_two_head_folder(model) else None
    except ModelError:
        return None
