"""Labelled files -> figures (``monitor model eval``) and text files -> results
(``monitor model predict``). numpy only; the engines do the classifying.

Input files: CSV with a header, or JSONL (one object a line), chosen by the suffix
(``.jsonl``/``.ndjson`` -> JSONL, anything else CSV). Sentiment labels: negative/neutral/
positive or 0/1/2. Advocacy labels: promoter/detractor/none or 0/1/2; or a ``recommended``
column of 0/1, scored by ROC-AUC of P(promoter) - P(detractor).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monitor.classify.labels import ADVOCACY, SENTIMENT
from monitor.errors import MonitorError
from monitor.records import Classification

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # reviews can be long


class InputFileError(MonitorError):
    exit_code = 2


def is_jsonl(path: Path) -> bool:
    return path.suffix.lower() in (".jsonl", ".ndjson")


def iter_records(path: Path) -> Iterator[dict]:
    """Rows of a CSV (by header) or objects of a JSONL file, streamed."""
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
            yield from reader


def iter_texts(path: Path) -> Iterator[str]:
    for n, rec in enumerate(iter_records(path), 1):
        if "text" not in rec:
            raise InputFileError(f"{path}: record {n} has no 'text' field (columns: {', '.join(map(str, rec))})")
        value = rec["text"]
        yield "" if value is None else str(value)


def result_dict(c: Classification) -> dict:
    return {
        "sentiment": {"label": c.sentiment.label, "probabilities": c.sentiment.probabilities},
        "advocacy": {"label": c.advocacy.label, "probabilities": c.advocacy.probabilities},
        "model": c.model,
        "uncertain": c.uncertain,
        "status": c.status,
        "lang": c.lang,
    }


CSV_COLUMNS = ["sentiment", *[f"p_{s}" for s in SENTIMENT], "advocacy", *[f"p_{a}" for a in ADVOCACY],
               "model", "uncertain", "status", "lang"]


def csv_row(c: Classification) -> dict:
    row: dict = {"sentiment": c.sentiment.label, "advocacy": c.advocacy.label, "model": c.model,
                 "uncertain": int(c.uncertain), "status": c.status, "lang": c.lang or ""}
    for s in SENTIMENT:
        row[f"p_{s}"] = c.sentiment.probabilities.get(s, "")
    for a in ADVOCACY:
        row[f"p_{a}"] = c.advocacy.probabilities.get(a, "")
    return row


# ---------------------------------------------------------------------------- labelled data


@dataclass
class Labelled:
    task: str  # sentiment | advocacy | recommended
    texts: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)


def _label(value, names: tuple[str, ...], where: str) -> int:
    v = str(value).strip().lower()
    if v in names:
        return names.index(v)
    if v.isdigit() and int(v) < len(names):
        return int(v)
    raise InputFileError(f"{where}: label {value!r} is not one of {', '.join(names)} or 0..{len(names) - 1}")


def read_labelled(path: Path, task: str = "sentiment", *, labels_file: Path | None = None, text_column: str = "text",
                  label_column: str | None = None) -> Labelled:
    """``task``: sentiment (a ``label`` column), advocacy (``label`` promoter/detractor/none,
    or a ``recommended`` 0/1 column, which selects ROC-AUC). With ``labels_file``, ``path``
    is plain text, one text a line, and ``labels_file`` one label a line."""
    if labels_file is not None:
        texts = path.read_text(encoding="utf-8", errors="replace").splitlines()
        labels = [x.strip() for x in labels_file.read_text(encoding="utf-8").splitlines() if x.strip()]
        if len(texts) != len(labels):
            raise InputFileError(f"{path} has {len(texts)} lines but {labels_file} has {len(labels)} labels")
        names = SENTIMENT if task == "sentiment" else ADVOCACY
        return Labelled(task, texts, [_label(v, names, f"{labels_file}: line {n}") for n, v in enumerate(labels, 1)])
    out: Labelled | None = None
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
        else:
            out.labels.append(_label(value, SENTIMENT if task == "sentiment" else ADVOCACY, where))
        text = rec[text_column]
        out.texts.append("" if text is None else str(text))
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
    recalls, f1s = [], []
    for c in range(n):
        tp, support, predicted = m[c, c], m[c].sum(), m[:, c].sum()
        if support == 0:
            continue  # a class absent from the data does not count in the macro averages
        r = tp / support
        p = tp / predicted if predicted else 0.0
        recalls.append(r)
        f1s.append(2 * p * r / (p + r) if p + r else 0.0)
    return {"n": len(y_true), "accuracy": float((y_true == y_pred).mean()),
            "macro_f1": float(np.mean(f1s)), "macro_recall": float(np.mean(recalls)), "confusion": m.tolist()}


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
    return report


def format_report(report: dict) -> str:
    lines = [f"model {report['model']}, task {report['task']}, {report['records']} record(s)"]
    if report["skipped"]:
        lines.append("not judged: " + ", ".join(f"{k} {v}" for k, v in sorted(report["skipped"].items())))
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
    return "\n".join(lines)
