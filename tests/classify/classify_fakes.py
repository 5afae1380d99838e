"""Helpers for the classifier tests: a tiny Hugging Face model built here, a fake classifier."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from monitor.classify.labels import empty_result
from monitor.records import Classification, LabelScore

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "monitor" / "models" / "advocacy-minilm"
WORDS = ["great", "love", "good", "best", "recommend", "bad", "awful", "hate", "worst", "avoid", "broken", "the", "a",
         "it", "is", "this", "product", "service", "i", "we", "you", "and", "not", "to", "of", "very", "support",
         "team", "app"]


def build_tiny_model(folder: Path, labels: Sequence[str] = ("negative", "neutral", "positive")) -> Path:
    """A 2-layer BERT (hidden 32) sequence classifier with a WordPiece vocabulary made with
    `tokenizers`, saved with save_pretrained like any hub model."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS,
                                         *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"),
                                         *"abcdefghijklmnopqrstuvwxyz0123456789.,!?'#@"])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=64)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=len(labels), initializer_range=0.5,
                        id2label=dict(enumerate(labels)), label2id={v: i for i, v in enumerate(labels)})
    model = BertForSequenceClassification(config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    fast.save_pretrained(str(folder))
    return folder


class FakeClassifier:
    """Labels by keyword; counts calls. ``name`` is the model version stored on rows."""

    def __init__(self, name: str = "fake@1", fail_on: str | None = None) -> None:
        self.name = name
        self.calls = 0
        self.fail_on = fail_on

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        self.calls += 1
        out = []
        for t in texts:
            if self.fail_on and self.fail_on in t:
                raise RuntimeError("poison text")
            if not t.strip():
                out.append(empty_result(self.name, "empty"))
                continue
            neg = any(w in t.lower() for w in ("awful", "avoid", "hate"))
            sent = LabelScore("negative", {"negative": 0.9, "neutral": 0.05, "positive": 0.05}) if neg else \
                LabelScore("positive", {"negative": 0.05, "neutral": 0.05, "positive": 0.9})
            adv = LabelScore("detractor", {"promoter": 0.05, "detractor": 0.9, "none": 0.05}) if neg else \
                LabelScore("promoter", {"promoter": 0.9, "detractor": 0.05, "none": 0.05})
            out.append(Classification(sent, adv, self.name))
        return out
