"""Train the shipped two-head classifier (sentiment + advocacy) from the shared datasets.

Multi-task design (see models/README.md for the model card):

* tweets (SemEval 2013-2016): sentiment label; neutral tweets also teach advocacy "none"
  (a neutral statement neither recommends nor warns); a positive tweet that recommends
  in so many words ("highly recommend", "you should try", "check it out", "switched to")
  teaches "promoter", a negative tweet that warns others ("avoid", "don't buy", "stay
  away", "boycott", "cancelled") teaches "detractor" (distant supervision: these cues only
  label the training data; the model learns from the whole text); other tweets have no
  advocacy label.
* clothing reviews: advocacy from the reviewer's own "recommends" flag and stars
  (recommends and 4-5 stars -> promoter; does not recommend and 1-3 stars -> detractor;
  the mixed cases -> none, a passive), sentiment from the stars (4-5 positive, 3 neutral,
  1-2 negative).

Batches are length-bucketed with dynamic padding; the loss of each head is class-weighted
(inverse frequency) so macro-recall, not accuracy on the majority class, is optimised.
After training, a temperature per head is fitted on validation data so probabilities
are calibrated, and per-class logit offsets for sentiment are tuned on the validation
split for macro-recall.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from monitor.classify import network
from monitor.classify.textprep import clean, head_tail

logger = logging.getLogger(__name__)

IGNORE = -100


@dataclass
class Example:
    text: str
    sentiment: int
    advocacy: int


def review_labels(recommended: int, rating: int) -> tuple[int, int]:
    sentiment = 2 if rating >= 4 else (1 if rating == 3 else 0)
    if recommended == 1 and rating >= 4:
        advocacy = 0  # promoter
    elif recommended == 0 and rating <= 3:
        advocacy = 1  # detractor
    else:
        advocacy = 2  # none: a passive, mixed signal
    return sentiment, advocacy


PROMOTER_CUES = re.compile(
    r"\b(recommend\w*|must[- ](have|try|see|read|watch|buy)|you (should|must|need to|gotta) "
    r"(try|get|use|check|see|buy|watch|read|go)|check (it|them|this|that) out|go (get|buy|try|see)|switched to|"
    r"never looking back|worth (it|every|the)|(love|loving) (my|this|their|the) new|can't recommend|go with|"
    r"big fan|shout ?out to|props to|kudos to)",
    re.IGNORECASE,
)
DETRACTOR_CUES = re.compile(
    r"\b(avoid|don'?t (buy|use|go|bother|waste|fly|shop|eat|watch)|do not (buy|use|go|fly|shop)|never again|"
    r"stay away|never (buying|buy|use|using|fly|flying|shop|shopping|going back|eat)|cancel(l?ed|l?ing)?|"
    r"switch(ing|ed)? (from|away)|boycott|rip[- ]?off|scam|waste of (money|time)|not recommend|"
    r"wouldn'?t recommend|uninstall\w*|refund|ditch(ed|ing)?|fed up)",
    re.IGNORECASE,
)


def tweet_advocacy(sentiment: int, text: str) -> int:
    """Advocacy training label of a tweet (IGNORE when the tweet says nothing either way)."""
    if sentiment == 1:
        return 2  # none
    if sentiment == 2 and PROMOTER_CUES.search(text):
        return 0  # promoter
    if sentiment == 0 and DETRACTOR_CUES.search(text):
        return 1  # detractor
    return IGNORE


def read_tweets(path: Path, cues: bool = True) -> list[Example]:
    """Tweets with their sentiment; advocacy from ``tweet_advocacy`` (or, without
    ``cues``, only neutral tweets as "none")."""
    out = []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            label = int(row["label"])
            advocacy = tweet_advocacy(label, row["text"]) if cues else (2 if label == 1 else IGNORE)
            out.append(Example(row["text"], label, advocacy))
    return out


def read_reviews(path: Path) -> list[dict]:
    rows = []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            text = " ".join(p for p in ((row.get("Title") or "").strip(), (row.get("Review Text") or "").strip()) if p)
            if not text:
                continue
            rows.append({"text": text, "recommended": int(row["Recommended IND"]), "rating": int(row["Rating"])})
    return rows


def split_reviews(rows: list[dict], seed: int) -> tuple[list[dict], list[dict], list[dict]]:
    """Fixed-seed split: 75% train, 5% validation (calibration), 20% held-out test."""
    idx = list(range(len(rows)))
    random.Random(seed).shuffle(idx)
    n_test = len(rows) // 5
    n_val = len(rows) // 20
    test = [rows[i] for i in idx[:n_test]]
    val = [rows[i] for i in idx[n_test : n_test + n_val]]
    train = [rows[i] for i in idx[n_test + n_val :]]
    return train, val, test


def read_lines_dataset(text_path: Path, label_path: Path) -> list[Example]:
    texts = text_path.read_text(encoding="utf-8").splitlines()
    labels = [int(x) for x in label_path.read_text().split()]
    return [Example(t, y, IGNORE) for t, y in zip(texts, labels, strict=True)]


def class_weights(labels: list[int], n: int) -> torch.Tensor:
    counts = np.bincount([y for y in labels if y != IGNORE], minlength=n).astype(float)
    w = counts.sum() / (n * np.maximum(counts, 1))
    return torch.tensor(np.clip(w, 0.2, 5.0), dtype=torch.float32)


def encode(tokenizer, texts: list[str], max_len: int) -> list[list[int]]:
    enc = tokenizer([clean(t) for t in texts], add_special_tokens=True, truncation=False)["input_ids"]
    return [head_tail(ids, max_len) for ids in enc]


def pad(batch_ids: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(x) for x in batch_ids)
    ids = torch.full((len(batch_ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch_ids), width), dtype=torch.long)
    for i, x in enumerate(batch_ids):
        ids[i, : len(x)] = torch.tensor(x)
        mask[i, : len(x)] = 1
    return ids, mask


def bucketed_batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Batches of similar length (less padding), in random order."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i] + rng.random() * 4))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


@torch.no_grad()
def predict_logits(model, ids: list[list[int]], pad_id: int, batch_size: int = 128):
    model.eval()
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    s_out = np.zeros((len(ids), 3), dtype=np.float32)
    a_out = np.zeros((len(ids), 3), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        x, m = pad([ids[i] for i in chunk], pad_id)
        s, a = model(x, m)
        s_out[chunk] = s.numpy()
        a_out[chunk] = a.numpy()
    return s_out, a_out


def macro_recall(y_true, y_pred, n: int = 3) -> float:
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    recalls = [float((y_pred[y_true == c] == c).mean()) for c in range(n) if (y_true == c).any()]
    return float(np.mean(recalls))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature that minimises the negative log-likelihood (grid + refinement)."""
    def nll(t: float) -> float:
        z = logits / t
        z = z - z.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        return float(-logp[np.arange(len(labels)), labels].mean())

    grid = np.exp(np.linspace(math.log(0.3), math.log(5.0), 60))
    best = min(grid, key=nll)
    for step in (0.05, 0.01):
        cands = np.arange(best * (1 - 5 * step), best * (1 + 5 * step), best * step)
        best = min(cands, key=nll)
    return float(best)


def tune_offsets(logits: np.ndarray, labels: np.ndarray) -> list[float]:
    """Per-class additive logit offsets that maximise macro-recall on validation data."""
    best, best_score = [0.0, 0.0, 0.0], macro_recall(labels, logits.argmax(1))
    grid = np.arange(-1.5, 1.51, 0.1)
    for b0 in grid:
        for b2 in grid:
            off = np.array([b0, 0.0, b2])
            score = macro_recall(labels, (logits + off).argmax(1))
            if score > best_score + 1e-9:
                best, best_score = [float(b0), 0.0, float(b2)], score
    return best


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(positive, scores))


def train(
    data_dir: Path,
    base_dir: Path,
    out_dir: Path,
    *,
    epochs: int = 1,
    batch_size: int = 32,
    lr: float = 5e-5,
    head_lr: float = 5e-4,
    max_len: int = 128,
    seed: int = 42,
    threads: int | None = None,
    limit: int | None = None,
    version: str = "3",
    name: str = "advocacy-minilm",
    init_dir: Path | None = None,
    warmup: float = 0.06,
    tweet_cues: bool = True,
    progress=None,
) -> dict:
    """Train and save; returns the validation figures. ``progress(done, total, info)`` is
    called after every step. Deterministic for a given seed and thread count."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    from transformers import AutoTokenizer, get_linear_schedule_with_warmup

    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    tweets = read_tweets(data_dir / "semeval2017_sentiment" / "train.csv", cues=tweet_cues)
    reviews = read_reviews(data_dir / "clothing_reviews_recommend" / "train.csv")
    r_train, r_val, _r_test = split_reviews(reviews, seed)
    examples = tweets + [Example(r["text"], *review_labels(r["recommended"], r["rating"])) for r in r_train]
    if limit:
        random.Random(seed).shuffle(examples)
        examples = examples[:limit]
    logger.info("training examples: %d (%d tweets, %d reviews)", len(examples), len(tweets), len(r_train))

    ids = encode(tokenizer, [e.text for e in examples], max_len)
    s_labels = torch.tensor([e.sentiment for e in examples])
    a_labels = torch.tensor([e.advocacy for e in examples])
    s_loss = nn.CrossEntropyLoss(weight=class_weights(s_labels.tolist(), 3), ignore_index=IGNORE)
    a_loss = nn.CrossEntropyLoss(weight=class_weights(a_labels.tolist(), 3), ignore_index=IGNORE)

    val_tweets = read_lines_dataset(data_dir / "tweeteval_sentiment" / "val_text.txt",
                                    data_dir / "tweeteval_sentiment" / "val_labels.txt")
    val_t_ids = encode(tokenizer, [e.text for e in val_tweets], max_len)
    val_t_y = np.array([e.sentiment for e in val_tweets])
    val_r_ids = encode(tokenizer, [r["text"] for r in r_val], max_len)
    val_r_adv = np.array([review_labels(r["recommended"], r["rating"])[1] for r in r_val])
    val_r_rec = np.array([r["recommended"] for r in r_val])

    if init_dir is not None:  # continue training a saved two-head model (e.g. one more epoch at a lower lr)
        model, _, _ = network.load(init_dir)
    else:
        model = network.from_base(base_dir)
    heads = [p for n, p in model.named_parameters() if n.startswith(("sentiment_head", "advocacy_head"))]
    enc_decay = [p for n, p in model.named_parameters() if n.startswith("encoder") and p.ndim > 1]
    enc_nodecay = [p for n, p in model.named_parameters() if n.startswith("encoder") and p.ndim <= 1]
    optim = torch.optim.AdamW(
        [
            {"params": enc_decay, "lr": lr, "weight_decay": 0.01},
            {"params": enc_nodecay, "lr": lr, "weight_decay": 0.0},
            {"params": heads, "lr": head_lr, "weight_decay": 0.01},
        ]
    )
    rng = random.Random(seed)
    lengths = [len(x) for x in ids]
    steps_per_epoch = math.ceil(len(ids) / batch_size)
    total = steps_per_epoch * epochs
    sched = get_linear_schedule_with_warmup(optim, int(warmup * total), total)
    pad_id = tokenizer.pad_token_id
    history = []
    best_score = -1.0
    step = 0
    started = time.monotonic()
    for epoch in range(1, epochs + 1):
        model.train()
        running = 0.0
        for batch in bucketed_batches(lengths, batch_size, rng):
            x, m = pad([ids[i] for i in batch], pad_id)
            s_logits, a_logits = model(x, m)
            loss = s_loss(s_logits, s_labels[batch])
            a_y = a_labels[batch]
            if (a_y != IGNORE).any():
                loss = loss + a_loss(a_logits, a_y)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            sched.step()
            step += 1
            running = 0.98 * running + 0.02 * float(loss.detach()) if step > 1 else float(loss.detach())
            if progress:
                progress(step, total, {"epoch": epoch, "loss": running})
        figures = evaluate_validation(model, pad_id, val_t_ids, val_t_y, val_r_ids, val_r_adv, val_r_rec)
        figures.update(epoch=epoch, elapsed_s=round(time.monotonic() - started, 1))
        history.append(figures)
        logger.info("epoch %d validation: %s", epoch, json.dumps(figures))
        ckpt = out_dir.parent / f"{out_dir.name}.epoch{epoch}"
        _save_calibrated(model, tokenizer, ckpt, figures, history, name, version, max_len, seed)
        score = figures["tweeteval_val_macro_recall_tuned"] + figures["reviews_val_recommend_auc"]
        if score > best_score:
            best_score = score
            _save_calibrated(model, tokenizer, out_dir, figures, history, name, version, max_len, seed)
    return {"history": history, "out_dir": str(out_dir)}


def evaluate_validation(model, pad_id, val_t_ids, val_t_y, val_r_ids, val_r_adv, val_r_rec) -> dict:
    s_logits, _ = predict_logits(model, val_t_ids, pad_id)
    _, a_logits = predict_logits(model, val_r_ids, pad_id)
    offsets = tune_offsets(s_logits, val_t_y)
    a_prob = _softmax(a_logits)
    return {
        "tweeteval_val_macro_recall": round(macro_recall(val_t_y, s_logits.argmax(1)), 4),
        "tweeteval_val_macro_recall_tuned": round(macro_recall(val_t_y, (s_logits + offsets).argmax(1)), 4),
        "sentiment_offsets": offsets,
        "sentiment_temperature": fit_temperature(s_logits + offsets, val_t_y),
        "advocacy_temperature": fit_temperature(a_logits, val_r_adv),
        "reviews_val_recommend_auc": round(roc_auc(a_prob[:, 0] - a_prob[:, 1], val_r_rec), 4),
    }


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def _save_calibrated(model, tokenizer, out_dir, figures, history, name, version, max_len, seed) -> None:
    meta = {
        "name": name,
        "version": version,
        "max_length": max_len,
        "seed": seed,
        "sentiment_offsets": figures["sentiment_offsets"],
        "sentiment_temperature": figures["sentiment_temperature"],
        "advocacy_temperature": figures["advocacy_temperature"],
        "validation": history,
    }
    network.save(model, tokenizer, out_dir, meta)
