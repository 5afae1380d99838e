"""Train the shipped classifier (sentiment, advocacy and stance heads) from the shared datasets.

Multi-task design (see monitor/models/advocacy-minilm/README.md, the model card):

* topic tweets (SemEval-2016/2017 Task 4C, ``--stance``): tweets scored -2..+2 toward a
  named topic. The model reads ``[CLS] topic [SEP] tweet [SEP]``; the stance head learns
  the 5-point label; the advocacy head learns its NPS reading (+2 promoter, +1 passive and
  0 no stance both "none", -1 and -2 detractor). They teach no sentiment: stance toward a
  target is not the tone of the text.
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
import hashlib
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
from monitor.classify.evaluation import figures as class_figures
from monitor.classify.evaluation import macro_mae, nps
from monitor.classify.labels import ADVOCACY
from monitor.classify.textprep import clean, clean_target, with_target

logger = logging.getLogger(__name__)

IGNORE = -100


@dataclass
class Example:
    text: str
    sentiment: int
    advocacy: int
    target: str = ""
    stance: int = IGNORE  # index into network.STANCE_LABELS (-2..+2)


def read_topic(path: Path, with_ids: bool = False) -> list:
    """SemEval Task 4C rows (id, topic, label -2..+2, text) as targeted examples (with
    ``with_ids``, as (id, example) pairs)."""
    out: list = []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            score = int(row["label"])
            e = Example(row["text"], IGNORE, nps(score), target=row["topic"], stance=score + 2)
            out.append((row["id"], e) if with_ids else e)
    return out


_NAME = re.compile(r"(?<![\w@#])(?:[#@]?[A-Z][\w&'-]{2,}(?: [A-Z][\w&'-]+)?)")


def pseudo_target(text: str, rng: random.Random) -> str:
    """A name from the tweet (a capitalised word, hashtag or handle, not the first word),
    or "" when there is none."""
    names = [m.group(0) for m in _NAME.finditer(text) if m.start() > 0]
    return rng.choice(names) if names else ""


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


def read_tweets(path: Path, cues: bool = True, exclude: set[str] | frozenset[str] = frozenset()) -> list[Example]:
    """Tweets with their sentiment; advocacy from ``tweet_advocacy`` (or, without
    ``cues``, only neutral tweets as "none"). Ids in ``exclude`` (an evaluation set) are
    left out."""
    out = []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row.get("tweet_id") in exclude:
                continue
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
            rows.append({"text": text, "recommended": int(row["Recommended IND"]), "rating": int(row["Rating"]),
                         "product": (row.get("Class Name") or "").strip()})
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


def encode(tokenizer, texts: list[str], max_len: int, targets: list[str] | None = None) -> list[list[int]]:
    """Token windows as the engines build them: ``[CLS] target [SEP] text [SEP]`` where a
    target is given, ``[CLS] text [SEP]`` otherwise."""
    targets = targets or [""] * len(texts)
    cleaned_targets = [clean_target(t) for t in targets]
    enc = tokenizer([clean(t, tg or None) for t, tg in zip(texts, cleaned_targets, strict=True)],
                    add_special_tokens=True, truncation=False)["input_ids"]
    tenc = tokenizer([t or "x" for t in cleaned_targets], add_special_tokens=False)["input_ids"]
    return [with_target(ids, tids if tg else [], max_len) for ids, tids, tg in zip(enc, tenc, cleaned_targets,
                                                                                   strict=True)]


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
    """Sentiment, advocacy and stance logits for token windows (numpy)."""
    model.eval()
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    outs = [np.zeros((len(ids), n), dtype=np.float32) for n in (3, 3, 5)]
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        x, m = pad([ids[i] for i in chunk], pad_id)
        for out, z in zip(outs, model(x, m), strict=True):
            out[chunk] = z.numpy()
    return tuple(outs)


def tune_stance_offsets(logits: np.ndarray, labels: np.ndarray, rounds: int = 3) -> list[float]:
    """Per-class logit offsets that minimise macro-MAE on validation data (coordinate search)."""
    off = np.zeros(logits.shape[1])
    best = macro_mae(labels, (logits + off).argmax(1))
    grid = np.arange(-2.0, 2.01, 0.1)
    for _ in range(rounds):
        for c in range(logits.shape[1]):
            if c == 2:
                continue  # the neutral class is the reference
            for v in grid:
                trial = off.copy()
                trial[c] = v
                score = macro_mae(labels, (logits + trial).argmax(1))
                if score < best - 1e-9:
                    best, off = score, trial
    return [round(float(v), 3) for v in off]


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


@dataclass
class DataMix:
    """How many examples of each kind one epoch uses (None: all)."""

    tweets: int | None = None
    reviews: int | None = None
    stance: bool = True
    topic: int | None = None  # Task 4C tweets per epoch (None: all of them)
    topic_advocacy: bool = True  # teach the NPS reading of their score to the advocacy head
    social: Path | None = None  # the team's guideline labels of Task 4C brand tweets
    social_repeat: int = 1  # how often each guideline-labelled tweet is seen per epoch
    social_holdout: float = 0.0  # share of the guideline-labelled tweets kept out as validation data
    written: Path | None = None  # the team's written posts (brand,text,label): advocacy only
    written_repeat: int = 1  # how often each written post is seen per epoch


def in_holdout(tweet_id: str, fraction: float) -> bool:
    """Whether a guideline-labelled tweet is in the held-out validation part: a fixed share of
    them, chosen by a hash of the tweet id, so that training, ``models/tune_advocacy.py`` and
    anyone re-running it pick the same tweets."""
    if fraction <= 0:
        return False
    return int(hashlib.sha256(tweet_id.encode()).hexdigest()[:8], 16) / 0x1_0000_0000 < fraction


def read_guideline_holdout(data_dir: Path, path: Path, fraction: float) -> list[Example]:
    """The held-out part of the guideline-labelled Task 4C tweets (``skip`` ones left out), with
    their texts from the Task 4C training files: validation data for the advocacy decision."""
    guideline = read_guideline(path)
    out: dict[str, Example] = {}
    for name in STANCE_TRAIN_FILES:
        for tweet_id, e in read_topic(data_dir / "semeval_topic_5point" / f"{name}.csv", with_ids=True):
            if tweet_id in guideline and tweet_id not in out and in_holdout(tweet_id, fraction):
                brand, advocacy = guideline[tweet_id]
                if advocacy is not None:
                    out[tweet_id] = Example(e.text, IGNORE, advocacy, target=brand)
    return list(out.values())


def load_training_data(data_dir: Path, seed: int, *, tweet_cues: bool, mix: DataMix,
                       exclude: set[str]) -> tuple[list[Example], list[dict], dict[str, int]]:
    rng = random.Random(seed)
    guideline = read_guideline(mix.social) if mix.stance and mix.social else {}
    held_out = {i for i in guideline if in_holdout(i, mix.social_holdout)}
    tweets = read_tweets(data_dir / "semeval2017_sentiment" / "train.csv", cues=tweet_cues, exclude=exclude | held_out)
    rng.shuffle(tweets)
    tweets = tweets[: mix.tweets] if mix.tweets else tweets
    for i, e in enumerate(tweets):
        if i % 2 == 0:
            e.target = pseudo_target(e.text, rng)
    reviews = read_reviews(data_dir / "clothing_reviews_recommend" / "train.csv")
    r_train, r_val, _r_test = split_reviews(reviews, seed)
    r_pick = list(r_train)
    rng.shuffle(r_pick)
    r_pick = r_pick[: mix.reviews] if mix.reviews else r_pick
    review_examples = [Example(r["text"], *review_labels(r["recommended"], r["rating"]),
                               target=r["product"] if i % 2 == 0 else "") for i, r in enumerate(r_pick)]
    stance: list[Example] = []
    social: list[Example] = []
    if mix.stance:
        folder = data_dir / "semeval_topic_5point"
        topic_ids: list[str] = []
        for name in STANCE_TRAIN_FILES:
            rows = read_topic(folder / f"{name}.csv", with_ids=True)
            topic_ids += [i for i, _ in rows]
            stance += [e for _, e in rows]
        kept: list[Example] = []
        seen: set[str] = set()
        for tweet_id, e in zip(topic_ids, stance, strict=True):
            if tweet_id in held_out:  # validation data: neither its advocacy nor its stance is trained on
                continue
            if tweet_id in guideline:
                if tweet_id not in seen:  # a tweet in two Task 4C files is one guideline example
                    seen.add(tweet_id)
                    brand, advocacy = guideline[tweet_id]
                    if advocacy is not None:  # "skip": the name did not mean the brand
                        social.append(Example(e.text, IGNORE, advocacy, target=brand, stance=e.stance))
                continue
            if not mix.topic_advocacy:
                e.advocacy = IGNORE  # stance only: Task 4C's stance is looser than the guideline's advocacy
            kept.append(e)
        rng.shuffle(kept)
        stance = kept[: mix.topic] if mix.topic else kept
    counts = {"tweets": len(tweets), "reviews": len(review_examples), "stance": len(stance),
              "social_guideline": len(social), "social_guideline_held_out": len(held_out)}
    examples = tweets + review_examples + stance + social * max(1, mix.social_repeat)
    if mix.written:
        written = read_written(mix.written)
        counts["written"] = len(written)
        examples += written * max(1, mix.written_repeat)
    return examples, r_val, counts


def read_written(path: Path) -> list[Example]:
    """The team's written social posts (``brand,text,label``, ``models/social_written/``): each
    teaches the advocacy head its label toward its brand; sentiment and stance are not labelled."""
    out: list[Example] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"brand", "text", "label"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))} (expected brand,text,label)")
        for line, row in enumerate(reader, start=2):
            label = (row["label"] or "").strip()
            if label not in ADVOCACY:
                raise ValueError(f"{path}, line {line}: label {label!r} is not one of {', '.join(ADVOCACY)}")
            text, brand = (row["text"] or "").strip(), (row["brand"] or "").strip()
            if not text or not brand:
                raise ValueError(f"{path}, line {line}: a written post needs a brand and a text")
            out.append(Example(text, IGNORE, ADVOCACY.index(label), target=brand))
    return out


def read_guideline(path: Path) -> dict[str, tuple[str, int | None]]:
    """The team's guideline labels of Task 4C brand tweets (``id,brand,label``): id -> (brand,
    advocacy index, or None for ``skip``)."""
    out: dict[str, tuple[str, int | None]] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            label = row["label"].strip()
            if label != "skip" and label not in ADVOCACY:
                raise ValueError(f"{path}: label {label!r} of tweet {row['id']} is not one of "
                                 f"{', '.join(ADVOCACY)}, skip")
            out[row["id"]] = (row["brand"], None if label == "skip" else ADVOCACY.index(label))
    return out


# The 2016 Task 4C files; devtest is kept for validation, test2017 for the model card only.
STANCE_TRAIN_FILES = ("train", "dev", "test2016")
STANCE_VAL_FILE = "devtest"


def read_exclude(path: Path | None) -> set[str]:
    """Tweet ids of an evaluation set (a CSV with an ``id`` column) that training must not see."""
    if path is None or not path.is_file():
        return set()
    with path.open(newline="", encoding="utf-8") as fh:
        return {row["id"] for row in csv.DictReader(fh)}


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
    version: str = "4",
    name: str = "advocacy-minilm",
    init_dir: Path | None = None,
    warmup: float = 0.06,
    tweet_cues: bool = True,
    mix: DataMix | None = None,
    exclude: Path | None = None,
    social_eval: Path | None = None,
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

    mix = mix or DataMix()
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    examples, r_val, counts = load_training_data(data_dir, seed, tweet_cues=tweet_cues, mix=mix,
                                                 exclude=read_exclude(exclude))
    if limit:
        random.Random(seed).shuffle(examples)
        examples = examples[:limit]
    logger.info("training examples: %d (%s)", len(examples), counts)

    ids = encode(tokenizer, [e.text for e in examples], max_len, [e.target for e in examples])
    labels = [torch.tensor([getattr(e, k) for e in examples]) for k in ("sentiment", "advocacy", "stance")]
    losses = [nn.CrossEntropyLoss(weight=class_weights(y.tolist(), n), ignore_index=IGNORE)
              for y, n in zip(labels, (3, 3, 5), strict=True)]

    holdout = (read_guideline_holdout(data_dir, mix.social, mix.social_holdout)
               if mix.stance and mix.social and mix.social_holdout > 0 else [])
    val = ValidationData.load(tokenizer, data_dir, r_val, max_len, with_stance=mix.stance, social_eval=social_eval,
                              nps_advocacy=mix.topic_advocacy, social_extra=holdout)
    if init_dir is not None:  # continue training a saved model (e.g. one more stage at a lower lr)
        model, _, _ = network.load(init_dir, silent_new_heads=False)
    else:
        model = network.from_base(base_dir)
    heads = [p for n, p in model.named_parameters() if not n.startswith("encoder")]
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
    best_score = -math.inf
    step = 0
    started = time.monotonic()
    for epoch in range(1, epochs + 1):
        model.train()
        running = 0.0
        for batch in bucketed_batches(lengths, batch_size, rng):
            x, m = pad([ids[i] for i in batch], pad_id)
            loss = None
            for logits, y, fn in zip(model(x, m), labels, losses, strict=True):
                yb = y[batch]
                if (yb != IGNORE).any():
                    part = fn(logits, yb)
                    loss = part if loss is None else loss + part
            if loss is None:
                continue
            optimizer_step(model, optim, sched, loss)
            step += 1
            running = 0.98 * running + 0.02 * float(loss.detach()) if step > 1 else float(loss.detach())
            if progress:
                progress(step, total, {"epoch": epoch, "loss": running})
        figures = val.evaluate(model, pad_id)
        figures.update(epoch=epoch, elapsed_s=round(time.monotonic() - started, 1))
        history.append(figures)
        logger.info("epoch %d validation: %s", epoch, json.dumps(figures))
        ckpt = out_dir.parent / f"{out_dir.name}.epoch{epoch}"
        meta = {"targeted": bool(mix.stance), "data": counts, "social_holdout": mix.social_holdout}
        _save_calibrated(model, tokenizer, ckpt, figures, history, name, version, max_len, seed, meta)
        score = selection_score(figures)
        if score > best_score:
            best_score = score
            _save_calibrated(model, tokenizer, out_dir, figures, history, name, version, max_len, seed, meta)
    return {"history": history, "out_dir": str(out_dir)}


def optimizer_step(model, optim, sched, loss) -> None:
    """Backpropagate ``loss``, clip the gradient norm to 1.0, step the optimiser and its schedule."""
    optim.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optim.step()
    sched.step()


def selection_score(figures: dict) -> float:
    """One number to pick the best epoch on validation data: sentiment macro-recall, reviews
    ROC-AUC, social advocacy macro-F1, minus stance macro-MAE (each about 0-1)."""
    score = figures["tweeteval_val_macro_recall_tuned"] + figures["reviews_val_recommend_auc"]
    if "stance_val_macro_mae" in figures:
        score -= figures["stance_val_macro_mae"]
    if "social_val_macro_f1_tuned" in figures:  # the team's guideline: what advocacy means on social posts
        score += figures["social_val_macro_f1_tuned"]
    elif "stance_val_macro_mae" in figures:
        score += figures["stance_val_advocacy_macro_f1"]
    return score


@dataclass
class ValidationData:
    """The validation splits, tokenised once: TweetEval val (sentiment), the reviews'
    validation part (advocacy, recommends) and Task 4C devtest (stance, advocacy)."""

    t_ids: list
    t_y: np.ndarray
    r_ids: list
    r_adv: np.ndarray
    r_rec: np.ndarray
    s_ids: list
    s_y: np.ndarray
    g_ids: list
    g_y: np.ndarray
    nps_advocacy: bool = True

    @classmethod
    def load(cls, tokenizer, data_dir: Path, r_val: list[dict], max_len: int, with_stance: bool = True,
             social_eval: Path | None = None, nps_advocacy: bool = True, social_extra: list[Example] | None = None):
        """``social_extra``: more guideline-labelled tweets (the held-out part of the training
        labels) judged together with the social set's dev part."""
        tweets = read_lines_dataset(data_dir / "tweeteval_sentiment" / "val_text.txt",
                                    data_dir / "tweeteval_sentiment" / "val_labels.txt")
        stance = read_topic(data_dir / "semeval_topic_5point" / f"{STANCE_VAL_FILE}.csv") if with_stance else []
        social = read_social_dev(data_dir, social_eval) if social_eval and social_eval.is_file() else []
        social += social_extra or []
        return cls(
            g_ids=encode(tokenizer, [e.text for e in social], max_len, [e.target for e in social]) if social else [],
            g_y=np.array([e.advocacy for e in social], dtype=int),
            nps_advocacy=nps_advocacy,
            t_ids=encode(tokenizer, [e.text for e in tweets], max_len),
            t_y=np.array([e.sentiment for e in tweets]),
            r_ids=encode(tokenizer, [r["text"] for r in r_val], max_len),
            r_adv=np.array([review_labels(r["recommended"], r["rating"])[1] for r in r_val]),
            r_rec=np.array([r["recommended"] for r in r_val]),
            s_ids=encode(tokenizer, [e.text for e in stance], max_len, [e.target for e in stance]),
            s_y=np.array([e.stance for e in stance], dtype=int),
        )

    def evaluate(self, model, pad_id: int) -> dict:
        s_logits, _, _ = predict_logits(model, self.t_ids, pad_id)
        _, a_logits, _ = predict_logits(model, self.r_ids, pad_id)
        offsets = tune_offsets(s_logits, self.t_y)
        a_prob = _softmax(a_logits)
        out = {
            "tweeteval_val_macro_recall": round(macro_recall(self.t_y, s_logits.argmax(1)), 4),
            "tweeteval_val_macro_recall_tuned": round(macro_recall(self.t_y, (s_logits + offsets).argmax(1)), 4),
            "sentiment_offsets": offsets,
            "sentiment_temperature": fit_temperature(s_logits + offsets, self.t_y),
            "reviews_val_recommend_auc": round(roc_auc(a_prob[:, 0] - a_prob[:, 1], self.r_rec), 4),
        }
        adv_logits, adv_y = a_logits, self.r_adv
        if len(self.s_ids):
            _, sa_logits, st_logits = predict_logits(model, self.s_ids, pad_id)
            st_off = tune_stance_offsets(st_logits, self.s_y)
            nps_y = np.array([nps(int(y) - 2) for y in self.s_y])
            out.update({
                "stance_val_macro_mae": round(macro_mae(self.s_y, st_logits.argmax(1)), 4),
                "stance_val_macro_mae_tuned": round(macro_mae(self.s_y, (st_logits + st_off).argmax(1)), 4),
                "stance_offsets": st_off,
                "stance_temperature": fit_temperature(st_logits + st_off, self.s_y),
                "stance_val_advocacy_macro_f1": round(class_figures(nps_y, sa_logits.argmax(1))["macro_f1"], 4),
            })
            if self.nps_advocacy:
                adv_logits, adv_y = np.concatenate([a_logits, sa_logits]), np.concatenate([self.r_adv, nps_y])
        if len(self.g_ids):
            _, g_logits, _ = predict_logits(model, self.g_ids, pad_id)
            raw, tuned, offsets = social_f1(g_logits, self.g_y)
            out.update({"social_val_macro_f1": round(raw, 4), "social_val_macro_f1_tuned": round(tuned, 4),
                        "social_val_offsets": offsets})
            adv_logits, adv_y = np.concatenate([adv_logits, g_logits]), np.concatenate([adv_y, self.g_y])
        out["advocacy_temperature"] = fit_temperature(adv_logits, adv_y)
        return out


def read_social_dev(data_dir: Path, labels: Path) -> list[Example]:
    """The dev part of the team's social advocacy set (``models/social_eval/labels.csv``: id,
    brand, label, split), its texts joined from ``semeval2017_sentiment/train.csv``."""
    with (data_dir / "semeval2017_sentiment" / "train.csv").open(newline="", encoding="utf-8") as fh:
        texts = {r["tweet_id"]: r["text"] for r in csv.DictReader(fh)}
    with labels.open(newline="", encoding="utf-8") as fh:
        return [Example(texts[r["id"]], IGNORE, ADVOCACY.index(r["label"]), target=r["brand"])
                for r in csv.DictReader(fh) if r["split"] == "dev" and r["id"] in texts]


def social_f1(logits: np.ndarray, labels: np.ndarray, step: float = 0.2) -> tuple[float, float, list[float]]:
    """Macro-F1 of the advocacy head on social posts: as it is, and with the promoter and
    detractor logit offsets (against ``none``, from -3 to +1 in ``step``) that maximise it
    (``models/tune_advocacy.py`` stores them, on a finer grid)."""
    raw = class_figures(labels, logits.argmax(1))["macro_f1"]
    best, best_off = raw, [0.0, 0.0, 0.0]
    grid = np.arange(-3.0, 1.0 + step / 2, step)
    for p in grid:
        for d in grid:
            score = class_figures(labels, (logits + [p, d, 0.0]).argmax(1))["macro_f1"]
            if score > best + 1e-9:
                best, best_off = score, [round(float(p), 2), round(float(d), 2), 0.0]
    return raw, best, best_off


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


CALIBRATION_KEYS = ("sentiment_offsets", "sentiment_temperature", "advocacy_temperature", "stance_offsets",
                    "stance_temperature")


def _save_calibrated(model, tokenizer, out_dir, figures, history, name, version, max_len, seed,
                     extra: dict | None = None) -> None:
    meta = {
        "name": name,
        "version": version,
        "max_length": max_len,
        "seed": seed,
        **{k: figures[k] for k in CALIBRATION_KEYS if k in figures},
        "validation": history,
        **(extra or {}),
    }
    network.save(model, tokenizer, out_dir, meta)
