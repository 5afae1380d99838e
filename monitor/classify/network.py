"""The shipped classifier's network: one MiniLM encoder, three heads.

* sentiment (negative / neutral / positive) of the text as a whole;
* advocacy (promoter / detractor / none) of the author toward the target brand;
* stance, the 5-point SemEval scale (-2..+2) toward the target brand.

A model whose ``monitor.json`` says ``"targeted": true`` reads the brand together with the
text: ``[CLS] brand [SEP] text [SEP]`` (``textprep.with_target``). Folders saved before the
stance head existed load with a fresh (untrained) stance head and ``targeted`` unset.

Saved as a folder holding the encoder's ``config.json``, the tokenizer files,
``model.safetensors`` (encoder and heads, float16 to keep the repository small)
and ``monitor.json`` (labels, calibration, version).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer

SENTIMENT_LABELS = ("negative", "neutral", "positive")
ADVOCACY_LABELS = ("promoter", "detractor", "none")
STANCE_LABELS = (-2, -1, 0, 1, 2)
META_FILE = "monitor.json"
WEIGHTS_FILE = "model.safetensors"


class TwoHeadModel(nn.Module):
    """Encoder with mean pooling, then a sentiment, an advocacy and a stance head."""

    def __init__(self, encoder: nn.Module, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.sentiment_head = nn.Linear(hidden, len(SENTIMENT_LABELS))
        self.advocacy_head = nn.Linear(hidden, len(ADVOCACY_LABELS))
        self.stance_head = nn.Linear(hidden, len(STANCE_LABELS))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, with_pooled: bool = False):
        """The logits of each head; ``with_pooled``: the mean-pooled sentence vector (before
        dropout) as a fourth output, for the engines that keep it as the mention's embedding."""
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        tokens = out.last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
        sentence = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        pooled = self.dropout(sentence)
        heads = self.sentiment_head(pooled), self.advocacy_head(pooled), self.stance_head(pooled)
        return (*heads, sentence) if with_pooled else heads


def from_base(base_dir: str | Path) -> TwoHeadModel:
    """A fresh model on top of a pretrained encoder folder."""
    encoder = AutoModel.from_pretrained(str(base_dir))
    return TwoHeadModel(encoder)


def save(model: TwoHeadModel, tokenizer, out_dir: str | Path, meta: dict) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.encoder.config.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / WEIGHTS_FILE))
    meta = dict(meta)
    meta.setdefault("sentiment_labels", list(SENTIMENT_LABELS))
    meta.setdefault("advocacy_labels", list(ADVOCACY_LABELS))
    meta.setdefault("stance_labels", list(STANCE_LABELS))
    (out / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def load(model_dir: str | Path, *, silent_new_heads: bool = True) -> tuple[TwoHeadModel, Any, dict]:
    """Load a saved model folder in float32, eval mode. A folder saved before the stance
    head existed gets one (the only missing keys allowed): all zeros for inference (so
    every engine gives the same, empty, stance), or, with ``silent_new_heads=False`` (to
    train it), initialised at random like any new layer."""
    folder = Path(model_dir)
    meta = json.loads((folder / META_FILE).read_text())
    config = AutoConfig.from_pretrained(str(folder))
    encoder = AutoModel.from_config(config)
    model = TwoHeadModel(encoder)
    state = {k: v.to(torch.float32) for k, v in load_file(str(folder / WEIGHTS_FILE)).items()}
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("stance_head") and "position_ids" not in k]
    if missing:
        raise ValueError(f"weights of {folder} lack {len(missing)} tensor(s), such as {missing[0]}")
    if silent_new_heads and any(k.startswith("stance_head") for k in result.missing_keys):
        nn.init.zeros_(model.stance_head.weight)
        nn.init.zeros_(model.stance_head.bias)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    return model, tokenizer, meta


def is_two_head_folder(path: str | Path) -> bool:
    return (Path(path) / META_FILE).is_file()
