"""Text -> sentiment + advocacy. The only package that imports transformers, torch or
onnxruntime (and only lazily, inside the engines, so the CLI starts fast).

Contract: ``classify(texts)`` takes a batch and returns one Classification per text, in
order, never raising for a bad text (empty, huge, binary junk): such texts come back
marked (``status``, ``uncertain``) so no mention waits forever. A classifier that reads
brands (``targeted`` true, ``TargetedClassifier``) also takes ``classify(texts, targets)``,
the brand of each text; ``classify_texts`` picks the right call.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast, runtime_checkable

from monitor.errors import ModelError
from monitor.records import Classification

if TYPE_CHECKING:
    from monitor.config import ClassifierSettings


@runtime_checkable
class Classifier(Protocol):
    name: str  # name@version, stored on every classification row

    def classify(self, texts: Sequence[str]) -> list[Classification]: ...


@runtime_checkable
class TargetedClassifier(Protocol):
    name: str
    targeted: bool  # True: the stance is judged toward each text's brand

    def classify(self, texts: Sequence[str], targets: Sequence[str | None] | None = None
                 ) -> list[Classification]: ...


BUNDLED_DIR = Path(__file__).resolve().parent.parent / "models"  # monitor/models, shipped in the wheel
DEFAULT_MODEL = "advocacy-minilm"  # the default classifier.model: bundled with monitor


def bundled_model_dir(name: str) -> Path | None:
    """The folder of a model shipped inside the package (``monitor/models/<name>``), or
    None when ``name`` is not a plain name or no such model is bundled."""
    if not name or name in (".", "..") or Path(name).name != name or "\\" in name:
        return None
    folder = BUNDLED_DIR / name
    return folder if folder.is_dir() else None


def resolve_model(model: str, base_dir: Path) -> str:
    """Where the model named in config lives, first match wins:

    1. a local folder, relative to the config's folder, then to the working folder;
    2. a model bundled with monitor of that name (``advocacy-minilm``), also under its old
       spelling ``models/advocacy-minilm`` (from before the model moved into the package);
    3. otherwise the string as given: a Hugging Face hub id (torch engine).
    """
    for candidate in (base_dir / model, Path(model)):
        if candidate.is_dir():
            return str(candidate.resolve())
    parts = Path(model).parts
    name = parts[1] if len(parts) == 2 and parts[0] == "models" else model
    bundled = bundled_model_dir(name)
    if bundled is not None:
        return str(bundled)
    if model.startswith((".", "/", "~")) or Path(model).suffix:
        raise ModelError(f"model folder {model!r} does not exist")
    return model


def classify_texts(classifier: Classifier | TargetedClassifier, texts: Sequence[str],
                   targets: Sequence[str | None] | None = None,
                   langs: Sequence[str | None] | None = None) -> list[Classification]:
    """A model that reads brands (``targeted``) gets each text's brand: a mention is stored
    once per brand it names, and each row gets the stance toward its own brand. An engine
    (``reads_declared_language``) also gets the language each source declared, for its
    language gate. Other classifiers (a test fake) get the texts alone."""
    if langs is not None and getattr(classifier, "reads_declared_language", False):
        return classifier.classify(texts, targets, langs=langs)  # type: ignore[call-arg]
    if targets is not None and getattr(classifier, "targeted", False):
        return cast(TargetedClassifier, classifier).classify(texts, targets)
    return classifier.classify(texts)


def build_classifier(settings: ClassifierSettings, base_dir: Path, cache_dir: Path | None = None) -> Classifier:
    """The engine named in config: ``onnx`` (int8, fast default) or ``torch``."""
    model = resolve_model(settings.model, base_dir)
    if settings.engine == "onnx":
        from monitor.classify.onnx_engine import OnnxClassifier

        return OnnxClassifier(model, cache_dir=cache_dir, threads=settings.threads, batch_size=settings.batch_size,
                              uncertain_below=settings.uncertain_below, languages=settings.languages)
    from monitor.classify.torch_engine import TorchClassifier

    return TorchClassifier(model, threads=settings.threads, batch_size=settings.batch_size,
                           uncertain_below=settings.uncertain_below, languages=settings.languages)


def current_model_name(settings: ClassifierSettings, base_dir: Path) -> str | None:
    """``name@version`` of the configured model without loading it (a two-head folder's
    monitor.json); None when only loading tells (a hub id, another kind of folder)."""
    from monitor.classify.folder import is_two_head_folder, model_name, read_meta

    try:
        model = resolve_model(settings.model, base_dir)
        return model_name(read_meta(model)) if is_two_head_folder(model) else None
    except ModelError:
        return None
