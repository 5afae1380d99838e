"""Labelled files -> figures (``monitor model eval``) and text files -> results
(``monitor model predict``). numpy only; the engines do the classifying.

Input files: CSV with a header, or JSONL (one object a line), chosen by the suffix
(``.jsonl``/``.ndjson`` -> JSONL, anything else CSV). Sentiment labels: negative/neutral/
positive or 0/1/2. Advocacy labels: promoter/detractor/none or 0/1/2; or a ``recommended``
column of 0/1, scored by ROC-AUC of P(promoter) - P(detractor). Stance labels: the 5-point
scale -2..+2 toward a target (SemEval Task 4C), scored by macro-averaged MAE and, read the
NPS way (+2 promoter, -1/-2 detractor, else none), promoter/detractor F1.

A ``brand`` column (or ``topic``, or the one ``--target-column`` names) gives each text
its target: a model that reads brands judges the stance toward it. Without one, texts are
read alone.

Advocacy and stance reports also say whether the advocacy head earns its keep: the ROC-AUC
of P(detractor) for the true detractors against that of the sentiment head's P(negative),
and P(promoter) against P(positive).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monitor import csvsafe
from monitor.classify.labels import ADVOCACY, SENTIMENT
from monitor.errors import MonitorError
from monitor.records import Classification

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # reviews can be long


class InputFileError(MonitorError):
    exit_code = 2


def is_jsonl(path: Path) -> bool:
    return path.suffix.lower() in (".jsonl", ".ndjson")


def iter_records(path: Path) -> Iterator[dict]:
    """Rows of a CSV (by header) or objects of a JSONL file, streamed. CSV cells come back as
    the monitor's exports were given them: the apostrophe ``csvsafe.neutralise`` puts before a
    formula-like text is taken off again."""
    try:
        f = path.open(encoding="utf-8", errors="replace", newline="")
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc}") from None
    with f:
        if is_jsonl(path):
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputFileError(f"{path}:{n}: not JSON: {exc}") from None
                if not isinstance(obj, dict):
                    raise InputFileError(f"{path}:{n}: each line must be a JSON object")
                yield obj
        else:
            reader = csv.DictReader(f)
            if not reader.fieldnames:
                return
            for row in reader:  # undo the formula guard of the monitor's own exports (monitor.csvsafe)
                yield {k: csvsafe.restore(v) if isinstance(v, str) else v for k, v in row.items()}


def iter_texts(path: Path) -> Iterator[str]:
    for n, rec in enumerate(iter_records(path), 1):
        if "text" not in rec:
            raise InputFileError(f"{path}: record {n} has no 'text' field (columns: {', '.join(map(str, rec))})")
        value = rec["text"]
        yield "" if value is None else str(value)


TARGET_COLUMNS = ("brand", "topic", "target")


def find_target_column(path: Path, wanted: str | None = None) -> str | None:
    """The column of ``path`` that names each text's brand (``wanted``, else the first of
    TARGET_COLUMNS present), or None."""
    for rec in iter_records(path):
        if wanted:
            if wanted not in rec:
                raise InputFileError(f"{path} has no {wanted!r} column (columns: {', '.join(map(str, rec))})")
            return wanted
        return next((c for c in TARGET_COLUMNS if c in rec), None)
    return None


def iter_targets(path: Path, column: str) -> Iterator[str | None]:
    for rec in iter_records(path):
        value = rec.get(column)
        yield None if value in (None, "") else str(value)


def result_dict(c: Classification) -> dict:
    return {
        "sentiment": {"label": c.sentiment.label, "probabilities": c.sentiment.probabilities},
        "advocacy": {"label": c.advocacy.label, "probabilities": c.advocacy.probabilities},
        "stance": c.stance,
        "stance_score": c.stance_score,
        "model": c.model,
        "uncertain": c.uncertain,
        "status": c.status,
        "lang": c.lang,
    }


CSV_COLUMNS = ["sentiment", *[f"p_{s}" for s in SENTIMENT], "advocacy", *[f"p_{a}" for a in ADVOCACY],
               "stance", "stance_score", "model", "uncertain", "status", "lang"]


def csv_row(c: Classification) -> dict:
    row: dict = {"sentiment": c.sentiment.label, "advocacy": c.advocacy.label, "model": c.model,
                 "stance": "" if c.stance is None else c.stance,
                 "stance_score": "" if c.stance_score is None else c.stance_score,
                 "uncertain": int(c.uncertain), "status": c.status, "lang": c.lang or ""}
    for s in SENTIMENT:
        row[f"p_{s}"] = c.sentiment.probabilities.get(s, "")
    for a in ADVOCACY:
        row[f"p_{a}"] = c.advocacy.probabilities.get(a, "")
    return row


# ---------------------------------------------------------------------------- labelled data


@dataclass
class Labelled:
    task: str  # sentiment | advocacy | recommended | stance
    texts: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)  # stance: -2..+2
    targets: list[str | None] = field(default_factory=list)  # the brand of each text, where the file names one


STANCE_SCALE = (-2, -1, 0, 1, 2)


def nps(stance: int) -> int:
    """A -2..+2 stance read the NPS way, as an ADVOCACY index."""
    return ADVOCACY.index("promoter") if stance == 2 else ADVOCACY.index("detractor" if stance < 0 else "none")


def _stance(value, where: str) -> int:
    try:
        v = int(str(value).strip())
    except ValueError:
        v = None
    if v not in STANCE_SCALE:
        raise InputFileError(f"{where}: stance label {value!r} is not one of -2, -1, 0, 1, 2")
    return v


def _label(value, names: tuple[str, ...], where: str) -> int:
    v = str(value).strip().lower()
    if v in names:
        return names.index(v)
    if v.isdigit() and int(v) < len(names):
        return int(v)
    raise InputFileError(f"{where}: label {value!r} is not one of {', '.join(names)} or 0..{len(names) - 1}")


def read_labelled(path: Path, task: str = "sentiment", *, labels_file: Path | None = None, text_column: str = "text",
                  label_column: str | None = None, target_column: str | None = None) -> Labelled:
    """``task``: sentiment (a ``label`` column), advocacy (``label`` promoter/detractor/none,
    or a ``recommended`` 0/1 column, which selects ROC-AUC), stance (``label`` -2..+2). With
    ``labels_file``, ``path`` is plain text, one text a line, and ``labels_file`` one label
    a line. ``target_column``: the brand of each text (default: a brand/topic/target column
    when there is one)."""
    if labels_file is not None:
        texts = path.read_text(encoding="utf-8", errors="replace").splitlines()
        labels = [x.strip() for x in labels_file.read_text(encoding="utf-8").splitlines() if x.strip()]
        if len(texts) != len(labels):
            raise InputFileError(f"{path} has {len(texts)} lines but {labels_file} has {len(labels)} labels")
        names = SENTIMENT if task == "sentiment" else ADVOCACY
        return Labelled(task, texts, [_label(v, names, f"{labels_file}: line {n}") for n, v in enumerate(labels, 1)])
    out: Labelled | None = None
    tcol = find_target_column(path, target_column)
    for n, rec in enumerate(iter_records(path), 1):
        where = f"{path}: record {n}"
        if text_column not in rec:
            raise InputFileError(f"{where} has no {text_column!r} field (fields: {', '.join(map(str, rec))})")
        if out is None:
            column = label_column or ("recommended" if task == "advocacy" and "recommended" in rec
                                      and "label" not in rec else "label")
            kind = "recommended" if task == "advocacy" and column != "label" and "recommend" in column.lower() else task
            out = Labelled(kind)
        value = rec.get(column)
        if value in (None, ""):
            raise InputFileError(f"{where} has no {column!r} label")
        if out.task == "recommended":
            out.labels.append(_label(value, ("0", "1"), where))
        elif out.task == "stance":
            out.labels.append(_stance(value, where))
        else:
            out.labels.append(_label(value, SENTIMENT if task == "sentiment" else ADVOCACY, where))
        text = rec[text_column]
        out.texts.append("" if text is None else str(text))
        target = rec.get(tcol) if tcol else None
        out.targets.append(None if target in (None, "") else str(target))
    if out is None or not out.texts:
        raise InputFileError(f"{path} holds no records")
    return out


# ---------------------------------------------------------------------------- figures


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def figures(y_true, y_pred, n: int = 3) -> dict:
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    m = confusion(y_true, y_pred, n)
    recalls, f1s, per_class = [], [], []
    for c in range(n):
        tp, support, predicted = m[c, c], m[c].sum(), m[:, c].sum()
        r = tp / support if support else 0.0
        p = tp / predicted if predicted else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        per_class.append(round(float(f1), 4))
        if support == 0:
            continue  # a class absent from the data does not count in the macro averages
        recalls.append(r)
        f1s.append(f1)
    return {"n": len(y_true), "accuracy": float((y_true == y_pred).mean()),
            "macro_f1": float(np.mean(f1s)), "macro_recall": float(np.mean(recalls)), "confusion": m.tolist(),
            "f1_per_class": per_class}


def roc_auc(scores, positive) -> float:
    """Mann-Whitney U with average ranks for ties."""
    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(positive).astype(bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def evaluate(results: list[Classification], data: Labelled) -> dict:
    """Figures over the texts the model judged (status ok); the others are counted."""
    ok = [i for i, c in enumerate(results) if c.status == "ok"]
    report: dict = {"task": data.task, "model": results[0].model if results else None, "records": len(results),
                    "skipped": {}}
    for c in results:
        if c.status != "ok":
            report["skipped"][c.status] = report["skipped"].get(c.status, 0) + 1
    if not ok:
        raise InputFileError("the model judged none of the texts (all empty or in unsupported languages)")
    y = np.asarray([data.labels[i] for i in ok])
    report["targeted"] = sum(1 for i in ok if data.targets and data.targets[i])
    if data.task == "stance":
        return report | stance_report([results[i] for i in ok], y)
    if data.task == "recommended":
        score = [results[i].advocacy.probabilities.get("promoter", 0.0)
                 - results[i].advocacy.probabilities.get("detractor", 0.0) for i in ok]
        report["roc_auc"] = roc_auc(score, y == 1)
        report["n"] = len(ok)
        return report
    names = SENTIMENT if data.task == "sentiment" else ADVOCACY
    pred = [names.index(getattr(results[i], data.task).label) for i in ok]
    report |= figures(y, pred, len(names))
    report["labels"] = list(names)
    if data.task == "advocacy":
        report["heads"] = head_comparison([results[i] for i in ok], y)
    return report


def macro_mae(y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean([np.abs(y_pred[y_true == c] - c).mean() for c in np.unique(y_true)]))


def head_comparison(results: list[Classification], advocacy: np.ndarray) -> dict:
    """How well each head ranks the true promoters and detractors (ROC-AUC, one class
    against the rest): the advocacy head's P(detractor) / P(promoter) beside the sentiment
    head's P(negative) / P(positive), the stand-in a sentiment-only tool would use."""
    out = {}
    for adv, sent in (("detractor", "negative"), ("promoter", "positive")):
        truth = advocacy == ADVOCACY.index(adv)
        out[adv] = {
            "n": int(truth.sum()),
            "advocacy_auc": roc_auc([r.advocacy.probabilities.get(adv, 0.0) for r in results], truth),
            "sentiment_auc": roc_auc([r.sentiment.probabilities.get(sent, 0.0) for r in results], truth),
        }
    return out


def stance_report(results: list[Classification], stance: np.ndarray) -> dict:
    """Macro-MAE of the 5-point stance head (where the model has one), and the advocacy
    head against the NPS reading of the labels: per-class F1 and the head comparison."""
    out: dict = {"n": len(results), "not_judged": sum(1 for r in results if r.status != "ok")}
    if any(r.stance is not None for r in results):  # a text the model did not judge counts as "no stance" (0)
        pred = np.asarray([0 if r.stance is None else r.stance for r in results])
        out["macro_mae"] = macro_mae(stance, pred)
        out["stance_confusion"] = confusion(stance + 2, pred + 2, 5).tolist()
    truth = np.asarray([nps(int(v)) for v in stance])
    adv = figures(truth, [ADVOCACY.index(r.advocacy.label) for r in results], len(ADVOCACY))
    out["advocacy"] = adv | {"labels": list(ADVOCACY), "f1": dict(zip(ADVOCACY, adv["f1_per_class"], strict=True))}
    out["heads"] = head_comparison(results, truth)
    return out


def format_report(report: dict) -> str:
    lines = [f"model {report['model']}, task {report['task']}, {report['records']} record(s)"
             + (f", {report['targeted']} with a brand" if report.get("targeted") else "")]
    if report["skipped"]:
        lines.append("not judged: " + ", ".join(f"{k} {v}" for k, v in sorted(report["skipped"].items())))
    if report["task"] == "stance":
        if "macro_mae" in report:
            lines.append(f"5-point stance macro-MAE  {report['macro_mae']:.4f} (lower is better)")
        else:
            lines.append("this model has no stance head: advocacy only")
        adv = report["advocacy"]
        lines.append(f"advocacy vs the NPS reading: macro-F1 {adv['macro_f1']:.4f}, F1 "
                     + ", ".join(f"{k} {v:.4f}" for k, v in adv["f1"].items()))
        lines += _head_lines(report["heads"])
        return "\n".join(lines)
    if "roc_auc" in report:
        lines.append(f"ROC-AUC (recommended vs P(promoter) - P(detractor)) on {report['n']}: {report['roc_auc']:.4f}")
        return "\n".join(lines)
    lines += [f"accuracy      {report['accuracy']:.4f}", f"macro-F1      {report['macro_f1']:.4f}",
              f"macro-recall  {report['macro_recall']:.4f}", "", "confusion (rows: true, columns: predicted)"]
    names = report["labels"]
    width = max(len(x) for x in names) + 2
    lines.append(" " * width + "".join(f"{x:>{width}}" for x in names))
    for name, row in zip(names, report["confusion"], strict=True):
        lines.append(f"{name:<{width}}" + "".join(f"{v:>{width}}" for v in row))
    if "heads" in report:
        lines += ["", *_head_lines(report["heads"])]
    return "\n".join(lines)


def _head_lines(heads: dict) -> list[str]:
    lines = ["ranking (ROC-AUC, one class against the rest): advocacy head vs sentiment head"]
    for adv, sent in (("detractor", "negative"), ("promoter", "positive")):
        h = heads[adv]
        lines.append(f"  {adv:<9} n={h['n']:<5} P({adv}) {h['advocacy_auc']:.4f}   P({sent}) {h['sentiment_auc']:.4f}")
    return lines
