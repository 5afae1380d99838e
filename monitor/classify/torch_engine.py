"""The plain transformers/torch engine.

Loads either the project's two-head model folder (sentiment + advocacy) or any Hugging
Face sequence-classification model (a hub id when there is a network, or a local
folder): its labels are mapped to negative/neutral/positive by name, and it gives no
advocacy stance.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from monitor.classify.engine import BatchedEngine, model_languages
from monitor.classify.folder import check_two_head_folder, model_name
from monitor.errors import ModelError

logger = logging.getLogger(__name__)


def _sentiment_index(id2label: dict[int, str]) -> list[int | None]:
    """For each model output, its index in SENTIMENT (None when it is none of them)."""
    names = [str(id2label[i]).lower() for i in range(len(id2label))]
    generic = all(re.fullmatch(r"label_\d+", n) for n in names)
    if generic and len(names) == 3:
        return [0, 1, 2]
    if generic and len(names) == 2:
        return [0, 2]
    out: list[int | None] = []
    for n in names:
        if n.startswith("neg") or n in ("1 star", "2 stars"):
            out.append(0)
        elif n.startswith("neu") or n in ("3 stars",):
            out.append(1)
        elif n.startswith("pos") or n in ("4 stars", "5 stars"):
            out.append(2)
        else:
            out.append(None)
    if all(i is None for i in out):
        raise ModelError(f"cannot map the model's labels {names} to negative/neutral/positive")
    return out


class TorchClassifier(BatchedEngine):
    def __init__(self, model: str | Path, *, threads: int = 2, batch_size: int = 64, uncertain_below: float = 0.5,
                 max_length: int | None = None, languages: Sequence[str] | None = None) -> None:
        try:
            import torch
            from transformers import AutoModelForSequenceClassification, AutoTokenizer
        except ImportError as exc:  # pragma: no cover - install problem
            raise ModelError(f"the torch engine needs torch and transformers: {exc}") from None
        from monitor.classify import network

        self._torch = torch
        torch.set_num_threads(threads)
        self.batch_size = batch_size
        self.uncertain_below = uncertain_below
        source = str(model)
        try:
            if network.is_two_head_folder(source):
                check_two_head_folder(source)
                self.model, self.tokenizer, self.meta = network.load(source)
                self.two_head = True
                self.targeted = bool(self.meta.get("targeted"))
                self.name = model_name(self.meta)
                self.language_gate = model_languages(self.meta, languages, default=("en",))
                self.embeds = True
            else:
                self.tokenizer = AutoTokenizer.from_pretrained(source)
                self.model, info = AutoModelForSequenceClassification.from_pretrained(source, output_loading_info=True)
                missing = [k for k in info.get("missing_keys", ()) if "position_ids" not in k]
                if missing:  # e.g. a bare encoder: its head would be random numbers
                    raise ModelError(f"model {source!r} is not a trained sequence classifier: {len(missing)} weight(s) "
                                     f"missing from its checkpoint (such as {min(missing)})")
                self.model.eval()
                self.two_head = False
                self.meta = {"max_length": 256}
                revision = getattr(self.model.config, "_commit_hash", None) or "local"
                self.name = f"{Path(source).name if Path(source).is_dir() else source}@{str(revision)[:12]}"
                self.sentiment_map = _sentiment_index(self.model.config.id2label)
                self.language_gate = model_languages({}, languages)
        except ModelError:
            raise
        except OSError as exc:
            raise ModelError(
                f"cannot load model {source!r}: {exc}. A hub id needs network access (or a local copy); "
                "a folder must hold config.json, the weights and the tokenizer files"
            ) from None
        except Exception as exc:  # corrupt weights, wrong format: safetensors, json, torch errors
            raise ModelError(f"model {source!r} is corrupt or not a supported model: "
                             f"{type(exc).__name__}: {exc}") from None
        self.pad_id = self.tokenizer.pad_token_id or 0
        limit = getattr(self.tokenizer, "model_max_length", 512) or 512
        self.max_length = min(max_length or self.meta.get("max_length", 256), limit if limit < 100_000 else 512)

    def _tokenize(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]

    def _target_ids(self, targets: list[str]) -> list[list[int]]:
        return self.tokenizer(targets, add_special_tokens=False, verbose=False)["input_ids"]

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, ...]:
        torch = self._torch
        x, m = torch.from_numpy(ids), torch.from_numpy(mask)
        with torch.inference_mode():
            if self.two_head:
                return tuple(z.float().numpy() for z in self.model(x, m, with_pooled=self._gives_vectors()))
            return (self.model(input_ids=x, attention_mask=m).logits.float().numpy(),)
