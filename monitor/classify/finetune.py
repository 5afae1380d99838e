"""Fine-tune the shipped model on a deployment's own label corrections (``monitor model finetune``).

Corrections are what users fixed on the web page: the newest label per (mention, field),
each mention being one brand's row, so the brand the model reads with the text
(``"targeted": true`` in monitor.json) is the mention's brand. They come from the store,
or from the corrections CSV the web page exports (``text,label,field,mention_id,...``).

The corrected mentions are split, stratified by label and with a fixed seed, into a
training part and a held-out part (identical texts stay on one side). A copy of the model
is trained on the training part for a few epochs at a small learning rate; a head with no
correction for an example (the stance head always) is held to the old model's output on
it, so what nobody corrected is not forgotten. The old and the new model are then scored
on the held-out part, the new one with its weights rounded to float16 as it will be saved.
The new model is saved, under a new version (``4+corrections.1``) in a new folder, only
when it is better there: a higher advocacy macro-F1 and no lower advocacy accuracy (nor
sentiment macro-F1, when at least 10 sentiment corrections are held out). Otherwise, or
when the corrections are too few or too one-sided to learn from, ``FinetuneRefusedError``
is raised and nothing is written.
"""

from __future__ import annotations

import math
import random
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from monitor.classify import network
from monitor.classify.evaluation import TARGET_COLUMNS, InputFileError, figures, iter_records
from monitor.classify.labels import ADVOCACY, SENTIMENT, offset
from monitor.classify.textprep import clean
from monitor.classify.training import (
    IGNORE,
    bucketed_batches,
    class_weights,
    encode,
    fit_temperature,
    optimizer_step,
    pad,
    predict_logits,
)
from monitor.errors import ModelError

if TYPE_CHECKING:
    from monitor.store import Store

MIN_TOTAL = 30  # corrected mentions
MIN_PER_CLASS = 5  # of each advocacy label
HELD_OUT = 0.25
MIN_HELD_PER_CLASS = 2
MIN_CALIBRATION = 20  # held-out labels needed to refit a head's temperature
MIN_SENTIMENT_DECIDES = 10  # held-out sentiment corrections needed for sentiment to count in the decision
LABELS = {"advocacy": ADVOCACY, "sentiment": SENTIMENT}
_SUFFIX = re.compile(r"^(?P<root>.*)\+corrections\.(?P<n>\d+)$")


class FinetuneRefusedError(ModelError):
    """Too few or too one-sided corrections, or a fine-tuned model no better than the old
    one on the held-out corrections: nothing was saved. ``report``: the figures, if any."""

    exit_code = 2

    def __init__(self, message: str, report: dict | None = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class Correction:
    """One corrected mention: its text as the model reads it, its brand, and the corrected
    labels (indices into ADVOCACY / SENTIMENT, IGNORE where that field was not corrected)."""

    text: str
    brand: str = ""
    advocacy: int = IGNORE
    sentiment: int = IGNORE
    mention_id: int | None = None


# ------------------------------------------------------------------------- reading


def _set_label(c: Correction, fieldname: str, label: str, where: str) -> None:
    names = LABELS.get(fieldname)
    if names is None:
        raise InputFileError(f"{where}: field {fieldname!r} is not advocacy or sentiment")
    value = label.strip().lower()
    if value not in names:
        raise InputFileError(f"{where}: {fieldname} label {label!r} is not one of {', '.join(names)}")
    setattr(c, fieldname, names.index(value))


def from_store(store: Store) -> list[Correction]:
    """The newest correction per mention and field, one Correction per mention."""
    from monitor.textutil import mention_text  # the text exactly as the pipeline classifies it

    out: dict[int, Correction] = {}
    for row in store.accounts.corrections():
        c = out.setdefault(row["mention_id"], Correction(mention_text(row), row["brand"] or "",
                                                         mention_id=row["mention_id"]))
        _set_label(c, row["field"], row["label"], f"correction {row['id']}")
    return list(out.values())


def from_csv(path: Path) -> list[Correction]:
    """A corrections CSV (``text,label`` and optionally ``field``, ``mention_id``, ``brand``
    or another of evaluation.TARGET_COLUMNS).
    Without a ``field`` column the label says which field it is (the label sets differ).
    Without a ``brand`` column the brand is left empty (``fill_brands`` can look it up)."""
    out: list[Correction] = []
    for n, rec in enumerate(iter_records(path), 1):
        where = f"{path}: record {n}"
        if "text" not in rec or not rec.get("label"):
            raise InputFileError(f"{where} needs a 'text' and a 'label' (columns: {', '.join(map(str, rec))})")
        label = str(rec["label"])
        fieldname = (rec.get("field") or "").strip() or (
            "advocacy" if label.strip().lower() in ADVOCACY else "sentiment")
        mid = str(rec.get("mention_id") or "").strip()
        brand = next((str(rec[k]).strip() for k in TARGET_COLUMNS if rec.get(k)), "")
        c = Correction(str(rec["text"] or ""), brand, mention_id=int(mid) if mid.isdigit() else None)
        _set_label(c, fieldname, label, where)
        out.append(c)
    if not out:
        raise InputFileError(f"{path} holds no corrections")
    return out


def merge(*sources: Iterable[Correction]) -> list[Correction]:
    """One Correction per mention: an advocacy and a sentiment correction of the same
    mention (say, from the two exported CSVs) become one example; a later source wins."""
    by_id: dict[int, Correction] = {}
    out: list[Correction] = []
    for source in sources:
        for c in source:
            if c.mention_id is None:
                out.append(c)
                continue
            seen = by_id.get(c.mention_id)
            if seen is None:
                by_id[c.mention_id] = c
                out.append(c)
                continue
            seen.brand = c.brand or seen.brand
            seen.advocacy = c.advocacy if c.advocacy != IGNORE else seen.advocacy
            seen.sentiment = c.sentiment if c.sentiment != IGNORE else seen.sentiment
    return out


def fill_brands(corrections: list[Correction], store: Store) -> int:
    """Look up the brand of corrections that have a mention id but no brand (an exported
    CSV); returns how many are left without a brand."""
    todo = [(c, c.mention_id) for c in corrections if not c.brand and c.mention_id is not None]
    found = store.advocacy.mentions_by_id([mid for _, mid in todo]) if todo else {}
    for c, mid in todo:
        c.brand = found[mid]["brand"] if mid in found else ""
    return sum(1 for c in corrections if not c.brand)


# ---------------------------------------------------------------------- the data


def counts(examples: list[Correction]) -> dict:
    adv = Counter(ADVOCACY[c.advocacy] for c in examples if c.advocacy != IGNORE)
    sent = Counter(SENTIMENT[c.sentiment] for c in examples if c.sentiment != IGNORE)
    return {"mentions": len(examples), "advocacy": {k: adv.get(k, 0) for k in ADVOCACY},
            "sentiment": {k: sent.get(k, 0) for k in SENTIMENT}}


def check_enough(examples: list[Correction], min_total: int = MIN_TOTAL, min_per_class: int = MIN_PER_CLASS) -> dict:
    """Refuse a set too small or too one-sided to learn from and to measure on; returns its counts."""
    c = counts(examples)
    adv = c["advocacy"]
    if c["mentions"] < min_total or min(adv.values()) < min_per_class:
        shown = ", ".join(f"{k} {v}" for k, v in adv.items())
        raise FinetuneRefusedError(
            f"{c['mentions']} corrected mention(s) (advocacy: {shown}) are too small or too one-sided to train on: "
            f"fine-tuning needs at least {min_total} corrected mentions and {min_per_class} of each advocacy label "
            f"({', '.join(ADVOCACY)}). Correct more mentions on the web page, then try again; the model is unchanged.")
    return c


def _text_key(text: str) -> str:
    return re.sub(r"\W+", " ", clean(text).lower()).strip()


def split(examples: list[Correction], held_out: float = HELD_OUT, seed: int = 42,
          min_held: int = MIN_HELD_PER_CLASS) -> tuple[list[Correction], list[Correction]]:
    """(train, held-out): per label (advocacy, else sentiment), ``held_out`` of the texts
    and at least ``min_held``, never more than half; identical texts stay together."""
    groups: dict[str, list[Correction]] = {}
    for c in examples:
        groups.setdefault(_text_key(c.text), []).append(c)
    strata: dict[tuple[str, int], list[str]] = {}
    for key, group in groups.items():
        first = group[0]
        stratum = ("advocacy", first.advocacy) if first.advocacy != IGNORE else ("sentiment", first.sentiment)
        strata.setdefault(stratum, []).append(key)
    rng = random.Random(seed)
    held_keys: set[str] = set()
    for stratum in sorted(strata):
        keys = sorted(strata[stratum])
        rng.shuffle(keys)
        k = min(max(math.ceil(len(keys) * held_out), min_held), len(keys) // 2)
        held_keys.update(keys[:k])
    train = [c for key, g in groups.items() if key not in held_keys for c in g]
    held = [c for key, g in groups.items() if key in held_keys for c in g]
    return train, held


# ------------------------------------------------------------------------ versions


def next_version(version: str) -> tuple[str, int]:
    """("4", 1) for "4"; ("4", 3) for "4+corrections.2": the base and the next number."""
    m = _SUFFIX.match(str(version))
    return (m["root"], int(m["n"]) + 1) if m else (str(version), 1)


def plan_output(base_meta: dict, models_dir: Path, out_dir: Path | None = None) -> tuple[Path, str]:
    """The new model's folder and version: ``<models_dir>/<name>-corrections-N`` and
    ``<base version>+corrections.N``, N the first number whose default folder is free."""
    root, n = next_version(base_meta["version"])
    name = base_meta["name"]
    if out_dir is None:
        while (models_dir / f"{name}-corrections-{n}").exists():
            n += 1
        out_dir = models_dir / f"{name}-corrections-{n}"
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FinetuneRefusedError(f"{out_dir} already exists and is not empty: choose another --out "
                                   "(a model folder is never overwritten)")
    return out_dir, f"{root}+corrections.{n}"


# ----------------------------------------------------------------------- training


@dataclass
class FinetuneSettings:
    epochs: int = 3
    lr: float = 2e-5  # encoder
    head_lr: float = 1e-4
    batch_size: int = 16
    seed: int = 42
    held_out: float = HELD_OUT
    warmup: float = 0.1
    threads: int | None = None


def _head_figures(logits: np.ndarray, examples: list[Correction], head: str, meta: dict) -> dict | None:
    rows = [i for i, c in enumerate(examples) if getattr(c, head) != IGNORE]
    if not rows:
        return None
    y = np.array([getattr(examples[i], head) for i in rows])
    pred = offset(logits[rows], meta, head).argmax(1)
    out = figures(y, pred, 3)
    out["labels"] = list(LABELS[head])
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}


def held_out_figures(heads: tuple, examples: list[Correction], meta: dict) -> dict:
    """Advocacy (and sentiment, where corrected) figures of one model's logits, its labels
    decided as the engines decide them (argmax after the model's offsets)."""
    s_logits, a_logits = heads[0], heads[1]
    out = {"advocacy": _head_figures(a_logits, examples, "advocacy", meta)}
    sent = _head_figures(s_logits, examples, "sentiment", meta)
    if sent is not None:
        out["sentiment"] = sent
    return out


def is_better(old: dict, new: dict) -> tuple[bool, str]:
    """Higher advocacy macro-F1, no lower advocacy accuracy, and no lower sentiment
    macro-F1 where there are enough held-out sentiment corrections to tell."""
    checks = [("advocacy macro-F1", old["advocacy"]["macro_f1"], new["advocacy"]["macro_f1"], True),
              ("advocacy accuracy", old["advocacy"]["accuracy"], new["advocacy"]["accuracy"], False)]
    if "sentiment" in old and old["sentiment"]["n"] >= MIN_SENTIMENT_DECIDES:
        checks.append(("sentiment macro-F1", old["sentiment"]["macro_f1"], new["sentiment"]["macro_f1"], False))
    for name, a, b, strict in checks:
        if b < a - 1e-9 or (strict and b <= a + 1e-9):
            return False, f"{name} {a:.4f} -> {b:.4f}" + (" (not higher)" if strict and b >= a - 1e-9 else " (lower)")
    return True, ""


def _train(model, ids, labels, old_logits, st: FinetuneSettings, pad_id: int, progress) -> None:
    """Class-weighted cross-entropy where a head has a correction; where it has none, a
    KL term towards the old model's output (nothing uncorrected drifts for free)."""
    import torch
    from torch import nn
    from torch.nn import functional as F
    from transformers import get_linear_schedule_with_warmup

    ys = [torch.tensor(y) for y in labels]
    old = [torch.from_numpy(z) for z in old_logits]
    losses = [nn.CrossEntropyLoss(weight=class_weights(y, n), ignore_index=IGNORE)
              for y, n in zip(labels, (3, 3, 5), strict=True)]
    heads = [p for n, p in model.named_parameters() if not n.startswith("encoder")]
    encoder = [p for n, p in model.named_parameters() if n.startswith("encoder")]
    optim = torch.optim.AdamW([{"params": encoder, "lr": st.lr, "weight_decay": 0.01},
                               {"params": heads, "lr": st.head_lr, "weight_decay": 0.01}])
    rng = random.Random(st.seed)
    lengths = [len(x) for x in ids]
    total = math.ceil(len(ids) / st.batch_size) * st.epochs
    sched = get_linear_schedule_with_warmup(optim, int(st.warmup * total), max(total, 1))
    step, running = 0, 0.0
    for epoch in range(1, st.epochs + 1):
        model.train()
        for batch in bucketed_batches(lengths, st.batch_size, rng):
            x, m = pad([ids[i] for i in batch], pad_id)
            loss = torch.zeros(())
            for logits, y, z_old, fn in zip(model(x, m), ys, old, losses, strict=True):
                yb = y[batch]
                known = yb != IGNORE
                if known.any():
                    loss = loss + fn(logits, yb)
                if (~known).any():
                    keep = ~known
                    loss = loss + F.kl_div(F.log_softmax(logits[keep], -1), F.softmax(z_old[batch][keep], -1),
                                           reduction="batchmean")
            optimizer_step(model, optim, sched, loss)
            step += 1
            running = float(loss.detach()) if step == 1 else 0.9 * running + 0.1 * float(loss.detach())
            if progress:
                progress(step, total, {"epoch": epoch, "loss": running})
    model.eval()


def _round_to_float16(model) -> None:
    """The weights as ``network.save`` stores them, so the figures are the saved model's."""
    import torch

    with torch.no_grad():
        for t in (*model.parameters(), *model.buffers()):
            if t.is_floating_point():
                t.copy_(t.to(torch.float16).to(t.dtype))


def finetune(base_dir: Path, examples: list[Correction], out_dir: Path, version: str, *,
             settings: FinetuneSettings | None = None, sources: list[str] | None = None,
             progress: Callable[[int, int, dict], None] | None = None) -> dict:
    """Fine-tune a copy of the model in ``base_dir`` on ``examples``; save it to ``out_dir``
    as ``version`` when it is better on the held-out part, else raise FinetuneRefusedError.
    Returns the report (also recorded in the new monitor.json). Deterministic for a seed
    and a thread count."""
    import torch

    st = settings or FinetuneSettings()
    totals = check_enough(examples)
    train, held = split(examples, st.held_out, st.seed)
    held_labels = {c.advocacy for c in held} - {IGNORE}
    if len(held_labels) < len(ADVOCACY):
        raise FinetuneRefusedError(
            "the corrections are too small or too one-sided to train on: identical texts stay together, and that "
            "leaves no held-out example of " + ", ".join(a for i, a in enumerate(ADVOCACY) if i not in held_labels))
    random.seed(st.seed)
    np.random.seed(st.seed)
    torch.manual_seed(st.seed)
    if st.threads:
        torch.set_num_threads(st.threads)
    try:
        model, tokenizer, base_meta = network.load(base_dir)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load model {base_dir}: {exc}") from None
    targeted = bool(base_meta.get("targeted"))
    max_len = int(base_meta.get("max_length", 128))

    def windows(part: list[Correction]) -> list[list[int]]:
        return encode(tokenizer, [c.text for c in part], max_len, [c.brand for c in part] if targeted else None)

    pad_id = tokenizer.pad_token_id or 0
    train_ids, held_ids = windows(train), windows(held)
    old_train = predict_logits(model, train_ids, pad_id)
    old_held = predict_logits(model, held_ids, pad_id)
    labels = [[c.sentiment for c in train], [c.advocacy for c in train], [IGNORE] * len(train)]
    _train(model, train_ids, labels, old_train, st, pad_id, progress)
    _round_to_float16(model)
    new_held = predict_logits(model, held_ids, pad_id)

    old_name = f"{base_meta['name']}@{base_meta['version']}"
    new_name = f"{base_meta['name']}@{version}"
    report = {
        "base_model": {"name": base_meta["name"], "version": base_meta["version"], "folder": str(base_dir)},
        "name": base_meta["name"], "version": version, "out_dir": str(out_dir),
        "corrections": {**totals, "train": len(train), "held_out": len(held), "sources": sources or []},
        "held_out": {"old": held_out_figures(old_held, held, base_meta),
                     "new": held_out_figures(new_held, held, base_meta)},
        "old_model": old_name, "new_model": new_name,
    }
    better, why = is_better(report["held_out"]["old"], report["held_out"]["new"])
    report["saved"] = better
    if not better:
        raise FinetuneRefusedError(
            f"the fine-tuned model is not better on the {len(held)} held-out corrections ({why}): nothing saved, "
            f"{old_name} stays in use", report)
    meta = {k: v for k, v in base_meta.items() if k != "validation"}
    if "validation" in base_meta:
        meta["base_validation"] = base_meta["validation"]
    meta.update(version=version, base_model=report["base_model"], corrections=report["corrections"],
                held_out=report["held_out"], finetune={"epochs": st.epochs, "lr": st.lr, "head_lr": st.head_lr,
                                                       "batch_size": st.batch_size, "seed": st.seed,
                                                       "held_out_share": st.held_out})
    meta.update(_recalibrate(new_held, held, base_meta))
    _save(model, tokenizer, out_dir, meta)
    return report


def _recalibrate(heads: tuple, held: list[Correction], meta: dict) -> dict:
    """Temperatures refitted on the held-out labels where there are enough of them (a
    temperature does not change a label, so the comparison above stays fair)."""
    out = {}
    for head, z in (("sentiment", heads[0]), ("advocacy", heads[1])):
        rows = [i for i, c in enumerate(held) if getattr(c, head) != IGNORE]
        if len(rows) >= MIN_CALIBRATION:
            y = np.array([getattr(held[i], head) for i in rows])
            out[f"{head}_temperature"] = fit_temperature(offset(z[rows], meta, head), y)
    return out


def _save(model, tokenizer, out_dir: Path, meta: dict) -> None:
    """Write to a sibling folder, then rename: a half-written model folder never appears."""
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        network.save(model, tokenizer, partial, meta)
        if out_dir.exists():
            out_dir.rmdir()  # plan_output allows only an empty folder here
        partial.rename(out_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def format_report(report: dict) -> str:
    c = report["corrections"]
    lines = [f"corrections: {c['mentions']} mention(s), {c['train']} to train on, {c['held_out']} held out",
             f"held-out figures: {report['old_model']} (old) -> {report['new_model']} (new)"]
    for head in ("advocacy", "sentiment"):
        old, new = report["held_out"]["old"].get(head), report["held_out"]["new"].get(head)
        if old is None or new is None:
            continue
        note = ", too few to decide" if head == "sentiment" and old["n"] < MIN_SENTIMENT_DECIDES else ""
        for key, label in (("macro_f1", "macro-F1"), ("accuracy", "accuracy")):
            lines.append(f"  {head} {label:<9} {old[key]:.4f} -> {new[key]:.4f}   (n={old['n']}{note})")
    return "\n".join(lines)
