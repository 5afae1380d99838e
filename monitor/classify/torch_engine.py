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

from monitor.classify.labels import SENTIMENT, empty_result, label_score, softmax, two_head_results
from monitor.classify.textprep import clean, head_tail
from monitor.errors import ModelError
from monitor.records import Classification, LabelScore

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


class TorchClassifier:
    def __init__(self, model: str | Path, *, threads: int = 2, batch_size: int = 64, uncertain_below: float = 0.5,
                 max_length: int | None = None) -> None:
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
                self.model, self.tokenizer, self.meta = network.load(source)
                self.two_head = True
                self.name = f"{self.meta['name']}@{self.meta['version']}"
            else:
                self.tokenizer = AutoTokenizer.from_pretrained(source)
                self.model = AutoModelForSequenceClassification.from_pretrained(source)
                self.model.eval()
                self.two_head = False
                self.meta = {"max_length": 256}
                revision = getattr(self.model.config, "_commit_hash", None) or "local"
                self.name = f"{Path(source).name if Path(source).is_dir() else source}@{str(revision)[:12]}"
                self._map = _sentiment_index(self.model.config.id2label)
        except ModelError:
            raise
        except OSError as exc:
            raise ModelError(
                f"cannot load model {source!r}: {exc}. A hub id needs network access (or a local copy); "
                "a folder must hold config.json, the weights and the tokenizer files"
            ) from None
        except Exception as exc:  # corrupt weights, wrong format: safetensors, json, torch errors
            raise ModelError(f"model {source!r} is corrupt or not a supported model: {type(exc).__name__}: {exc}") from None
        limit = getattr(self.tokenizer, "model_max_length", 512) or 512
        self.max_length = min(max_length or self.meta.get("max_length", 256), limit if limit < 100_000 else 512)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        ids = self.tokenizer([clean(t) for t in texts], add_special_tokens=True, truncation=False,
                             verbose=False)["input_ids"]
        return [head_tail(x, self.max_length) for x in ids]

    def logits(self, ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray | None]:
        torch = self._torch
        n = len(ids)
        order = sorted(range(n), key=lambda i: len(ids[i]))
        s_out = None
        a_out = None
        pad_id = self.tokenizer.pad_token_id or 0
        with torch.inference_mode():
            for start in range(0, n, self.batch_size):
                chunk = order[start : start + self.batch_size]
                width = max(len(ids[i]) for i in chunk)
                x = torch.full((len(chunk), width), pad_id, dtype=torch.long)
                m = torch.zeros((len(chunk), width), dtype=torch.long)
                for row, i in enumerate(chunk):
                    x[row, : len(ids[i])] = torch.tensor(ids[i])
                    m[row, : len(ids[i])] = 1
                if self.two_head:
                    s, a = self.model(x, m)
                    a = a.numpy()
                else:
                    s = self.model(input_ids=x, attention_mask=m).logits
                    a = None
                s = s.float().numpy()
                if s_out is None:
                    s_out = np.zeros((n, s.shape[1]), dtype=np.float32)
                    a_out = np.zeros((n, a.shape[1]), dtype=np.float32) if a is not None else None
                s_out[chunk] = s
                if a is not None:
                    a_out[chunk] = a
        return s_out, a_out

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        results: list[Classification | None] = [None] * len(texts)
        todo = []
        for i, t in enumerate(texts):
            if not clean(t or ""):
                results[i] = empty_result(self.name, "empty")
            else:
                todo.append(i)
        if todo:
            s, a = self.logits(self.encode([texts[i] for i in todo]))
            if self.two_head:
                done = two_head_results(s, a, self.meta, self.name, self.uncertain_below)
            else:
                done = [self._generic(row) for row in s]
            for i, r in zip(todo, done, strict=True):
                results[i] = r
        return results  # type: ignore[return-value]

    def _generic(self, logits: np.ndarray) -> Classification:
        probs = softmax(logits)
        merged = np.zeros(3)
        for j, target in enumerate(self._map):
            if target is not None:
                merged[target] += probs[j]
        merged = merged / merged.sum() if merged.sum() > 0 else merged
        present = sorted({t for t in self._map if t is not None})
        labels = tuple(SENTIMENT[t] for t in present)
        sent = label_score(labels, merged[present])
        return Classification(sent, LabelScore("none", {}), self.name, uncertain=bool(sent.confidence < self.uncertain_below))
