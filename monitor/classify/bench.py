"""``monitor model bench``: throughput of the engines on the same texts, in one run.

Measured: the default engine (ONNX int8, batched), the torch engine (fp32, batched), and
a plain per-text ``transformers.pipeline("text-classification")`` over the same weights.
For that pipeline the encoder and the sentiment head are saved as a
``BertForSequenceClassification`` folder and loaded by the pipeline like any hub model;
its pooler is then swapped for mean pooling so that, one text at a time (no padding), it
computes exactly what the shipped model computes. The pipeline is timed with the
configured threads and with one thread; ratios use its better figure. Also measured: how often int8 and fp32
agree. Figures are printed, never asserted.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from monitor.classify.labels import SENTIMENT

DEMO = Path(__file__).resolve().parent.parent / "demo" / "mentions.jsonl"


def default_texts(n: int) -> list[str]:
    """Tweet-length texts: the demo mentions, cut to 280 characters, varied by a counter."""
    base = [json.loads(line)["text"][:280] for line in DEMO.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [f"{base[i % len(base)]} #{i}" for i in range(n)]


T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def save_as_pipeline_model(folder: Path, out: Path) -> None:
    """Encoder + sentiment head as a BertForSequenceClassification folder."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoTokenizer, BertForSequenceClassification

    config = AutoConfig.from_pretrained(str(folder))
    config.num_labels = len(SENTIMENT)
    config.id2label = dict(enumerate(SENTIMENT))
    config.label2id = {v: k for k, v in config.id2label.items()}
    model = BertForSequenceClassification(config)
    state = load_file(str(folder / "model.safetensors"))
    mapped = {("bert." + k[len("encoder."):]): v.float() for k, v in state.items() if k.startswith("encoder.")}
    mapped["classifier.weight"] = state["sentiment_head.weight"].float()
    mapped["classifier.bias"] = state["sentiment_head.bias"].float()
    missing, _unexpected = model.load_state_dict(mapped, strict=False)
    if [k for k in missing if "position_ids" not in k]:
        raise RuntimeError(f"weights missing for the pipeline model: {missing}")
    model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(folder)).save_pretrained(str(out))


def pipeline_on(folder: Path, tmp: Path, threads: int, max_length: int):
    import torch
    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.set_num_threads(threads)
    save_as_pipeline_model(folder, tmp)
    pipe = pipeline("text-classification", model=str(tmp), device="cpu", top_k=None, truncation=True,
                    max_length=max_length)

    class MeanPool(torch.nn.Module):  # one text per call: no padding, so a plain mean is exact
        def forward(self, hidden):
            return hidden.mean(dim=1)

    pipe.model.bert.pooler = MeanPool()
    pipe.model.dropout.eval()
    return pipe


def run(folder: Path, cache_dir: Path, texts: Sequence[str], *, threads: int = 2, batch_size: int = 64,
        pipeline_n: int = 200, labels: Sequence[int] | None = None, log: Callable[[str], None] = print) -> dict:
    from monitor.classify.onnx_engine import OnnxClassifier
    from monitor.classify.torch_engine import TorchClassifier

    texts = list(texts)
    report: dict = {"texts": len(texts), "threads": threads, "batch_size": batch_size,
                    "mean_chars": round(float(np.mean([len(t) for t in texts])), 1)}
    onnx = OnnxClassifier(folder, cache_dir=cache_dir, threads=threads, batch_size=batch_size)
    onnx.classify(texts[:batch_size])  # warm-up
    int8, dt = timed(lambda: onnx.classify(texts))
    report["onnx_int8_per_s"] = len(texts) / dt
    log(f"onnx int8 (default): {report['onnx_int8_per_s']:.0f} mentions/s ({len(texts)} in {dt:.1f}s)")

    torch_engine = TorchClassifier(folder, threads=threads, batch_size=batch_size)
    torch_engine.classify(texts[:batch_size])
    fp32, dt = timed(lambda: torch_engine.classify(texts))
    report["torch_fp32_per_s"] = len(texts) / dt
    log(f"torch fp32 batched:  {report['torch_fp32_per_s']:.0f} mentions/s ({len(texts)} in {dt:.1f}s)")

    import torch

    with tempfile.TemporaryDirectory(prefix="monitor-bench-") as tmp:
        pipe = pipeline_on(Path(folder), Path(tmp), threads, onnx.max_length)
        sample = texts[:pipeline_n]
        best = 0.0
        for n_threads in sorted({threads, 1}, reverse=True):
            # torch's per-op thread sync costs a per-text pipeline dearly on a busy machine:
            # measure it with one thread too and compare against its better figure
            torch.set_num_threads(n_threads)
            pipe(sample[0])
            piped, dt = timed(lambda: [pipe(t) for t in sample])
            report[f"pipeline_per_text_per_s_{n_threads}_threads"] = len(sample) / dt
            best = max(best, len(sample) / dt)
            log(f"transformers.pipeline, per text, {n_threads} thread(s): {len(sample) / dt:.1f} mentions/s "
                f"({len(sample)} in {dt:.1f}s)")
        torch.set_num_threads(threads)
    report["pipeline_per_text_per_s"] = best
    report["ratio_onnx_vs_pipeline"] = report["onnx_int8_per_s"] / report["pipeline_per_text_per_s"]
    report["ratio_onnx_vs_torch"] = report["onnx_int8_per_s"] / report["torch_fp32_per_s"]
    report["ratio_torch_vs_pipeline"] = report["torch_fp32_per_s"] / report["pipeline_per_text_per_s"]
    log(f"ratios: onnx/pipeline {report['ratio_onnx_vs_pipeline']:.1f}x, "
        f"onnx/torch {report['ratio_onnx_vs_torch']:.1f}x, torch/pipeline {report['ratio_torch_vs_pipeline']:.1f}x")

    report |= agreement(int8, fp32, labels)
    raw = [{d["label"]: d["score"] for d in (out[0] if out and isinstance(out[0], list) else out)} for out in piped]
    # the pipeline applies no calibration: compare the uncalibrated argmax of fp32 logits
    s32, _a = torch_engine.text_logits([_clean(t) for t in sample])
    report["pipeline_vs_torch_argmax_agreement"] = float(np.mean(
        [max(r, key=lambda k: r[k]) == SENTIMENT[int(np.argmax(s))]
         for r, s in zip(raw, s32, strict=True)]))
    log(f"int8 vs fp32: sentiment agreement {report['sentiment_agreement']:.4f}, advocacy agreement "
        f"{report['advocacy_agreement']:.4f}, max |dp| {report['max_probability_difference']:.4f}; "
        f"pipeline vs fp32 argmax agreement {report['pipeline_vs_torch_argmax_agreement']:.4f}")
    if "macro_recall_int8" in report:
        log(f"macro-recall int8 {report['macro_recall_int8']:.4f} vs fp32 {report['macro_recall_fp32']:.4f} "
            f"(difference {report['macro_recall_difference']:+.4f})")
    return report


def _clean(text: str) -> str:
    from monitor.classify.textprep import clean

    return clean(text)


def agreement(a: list, b: list, labels: Sequence[int] | None = None) -> dict:
    """How often two engines' results agree, over the texts both judged."""
    from monitor.classify.evaluation import figures

    both = [i for i in range(len(a)) if a[i].status == "ok" and b[i].status == "ok"]
    out = {
        "compared": len(both),
        "sentiment_agreement": float(np.mean([a[i].sentiment.label == b[i].sentiment.label for i in both])),
        "advocacy_agreement": float(np.mean([a[i].advocacy.label == b[i].advocacy.label for i in both])),
        "max_probability_difference": float(max(
            (abs(a[i].sentiment.probabilities[k] - b[i].sentiment.probabilities[k])
             for i in both for k in a[i].sentiment.probabilities), default=0.0)),
    }
    if labels is not None:
        y = [labels[i] for i in both]
        ra = figures(y, [SENTIMENT.index(a[i].sentiment.label) for i in both])["macro_recall"]
        rb = figures(y, [SENTIMENT.index(b[i].sentiment.label) for i in both])["macro_recall"]
        out |= {"macro_recall_int8": ra, "macro_recall_fp32": rb, "macro_recall_difference": ra - rb}
    return out
