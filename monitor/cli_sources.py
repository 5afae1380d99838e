"""CLI commands about sources: ``monitor status``, ``monitor preview BRAND``,
``monitor backfill SOURCE --since DATE`` and ``monitor cursor show|reset SOURCE``
(registered on the group in cli.py)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import click

from monitor.cli_common import build_sources, make_classifier, parse_since
from monitor.errors import MonitorError


def _health_rows(app) -> list[dict]:
    from monitor.collect import source_key
    from monitor.health import assess

    settings = app.settings
    store = app.store()
    keys = [source_key(b.name, s) for b, s in settings.source_jobs()]
    keys += [k for k in store.run_source_keys() if k not in keys]
    rows = []
    for key in keys:
        h = assess(store, key, settings.health)
        rows.append({"source": key, "state": h.state, "last_success": h.last_success, "last_run": h.last_run,
                     "fetched": h.fetched, "new": h.new, "failed": h.failed_items,
                     "consecutive_failures": h.consecutive_failures, "problem": h.problem or h.last_error})
    return rows


def _worker_rows(app) -> list[dict]:
    """The workers on the database (live ones, then those stopped or dead in the last day)."""
    from datetime import timedelta

    from monitor.store import parse_iso

    store = app.store()
    cutoff = store.database_now() - timedelta(days=1)
    rows = [w for w in store.workers.recent(50) if w["alive"] or parse_iso(w["heartbeat_at"]) >= cutoff]
    return [{"worker": w["id"], "host": w["host"], "pid": w["pid"],
             "state": "alive" if w["alive"] else ("stopped" if w["stopped_at"] else "dead"),
             "started": w["started_at"], "heartbeat": w["heartbeat_at"], "config": w["config_hash"],
             "leases": w["leases"], "claimed_mentions": w["claimed_mentions"],
             "claimed_deliveries": w["claimed_deliveries"]} for w in rows]


@click.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--fail-on-broken", is_flag=True, help="Exit with code 3 when a source is broken (for cron checks).")
@click.option("--workers", "only_workers", is_flag=True,
              help="Only the workers (daemons sharing the database): each one's state, heartbeat, config digest, "
                   "the leases it holds and the mentions and deliveries it has claimed.")
@click.pass_obj
def status(app, fmt, fail_on_broken, only_workers):
    """Each source's health: state, last success, latest run's fetched/new/failed, consecutive failures;
    then the workers that share the database and what each holds (in the table; --workers alone).

    States: ok, degraded, failing, auth, api_changed (the items of a page all failed validation),
    silent, never-run. A worker is alive while its heartbeat is fresh; dead: it ended without
    stopping (its leases and claims are taken over one worker_lease later)."""
    from monitor.health import BROKEN_STATES

    if only_workers:
        _print_workers(_worker_rows(app), fmt)
        return
    rows = _health_rows(app)
    if fmt == "json":
        for r in rows:
            click.echo(json.dumps(r, ensure_ascii=False))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table()
        for col in ("source", "state", "last success", "last run", "fetched", "new", "failed", "failures in a row",
                    "problem"):
            table.add_column(col, overflow="fold", max_width=60 if col == "problem" else None)
        for r in rows:
            table.add_row(r["source"], r["state"], (r["last_success"] or "never")[:19], (r["last_run"] or "-")[:19],
                          str(r["fetched"]), str(r["new"]), str(r["failed"]), str(r["consecutive_failures"]),
                          r["problem"] or "")
        Console(markup=False, highlight=False, width=None if sys.stdout.isatty() else 200).print(table)
        workers = _worker_rows(app)
        if workers:
            _print_workers(workers, fmt)
    if fail_on_broken and any(r["state"] in BROKEN_STATES for r in rows):
        sys.exit(3)


def _print_workers(rows: list[dict], fmt: str) -> None:
    if fmt == "json":
        for r in rows:
            click.echo(json.dumps(r, ensure_ascii=False))
        return
    if not rows:
        click.echo("No worker has run on this database in the last day.")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="workers")
    for col in ("worker", "state", "started", "heartbeat", "config", "leases", "claimed mentions",
                "claimed deliveries"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["worker"], r["state"], r["started"][:19], r["heartbeat"][:19], r["config"],
                      ", ".join(r["leases"]) or "-", str(r["claimed_mentions"]), str(r["claimed_deliveries"]))
    Console(markup=False, highlight=False, width=None if sys.stdout.isatty() else 200).print(table)


@click.command()
@click.argument("brand")
@click.option("--source", "source_name", help="Use this source's own terms (its name or type) instead of the brand's.")
@click.option("--limit", type=int, default=50, show_default=True, help="Matches to list.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--relevance", "show_relevance", is_flag=True,
              help="Instead: which of BRAND's stored mentions its relevance filter (about/not_about texts and the "
                   "marks) would hide now, with each score.")
@click.pass_obj
def preview(app, brand, source_name, limit, fmt, show_relevance):
    """What BRAND's terms match in stored history (every brand's mentions), with the matched term;
    with --relevance, what its relevance filter would hide."""
    from monitor.matching import Matcher

    settings = app.settings
    found = [b for b in settings.brands if b.name.casefold() == brand.casefold()]
    if len(found) != 1:  # the brand's terms are needed: a configured brand, any case
        brands = ", ".join(b.name for b in settings.brands) or "none configured"
        raise click.BadParameter(f"no configured brand {brand!r} (brands: {brands})" if not found else
                                 f"{brand!r} could be {', '.join(b.name for b in found)}: write it as one of them",
                                 param_hint="BRAND")
    brand = found[0].name
    terms = found[0].terms
    if show_relevance:
        _preview_relevance(app, found[0], limit, fmt)
        return
    if source_name:
        want = source_name.casefold()
        match = [s for s in found[0].sources if want in
                 ((s.name or s.type).casefold(), s.type.casefold(), f"{brand}:{s.name or s.type}".casefold())]
        if not match:
            names = ", ".join(s.name or s.type for s in found[0].sources) or "none"
            raise click.BadParameter(f"brand {brand} has no source {source_name!r} (its sources: {names})",
                                     param_hint="--source")
        if len(match) > 1:
            raise click.BadParameter(f"{source_name!r} matches several of {brand}'s sources ("
                                     + ", ".join(f"{brand}:{s.name or s.type}" for s in match)
                                     + "): name one of them", param_hint="--source")
        terms = match[0].terms or terms
    matcher = Matcher(terms)
    seen, scanned, matched, shown = set(), 0, 0, []
    dropped = 0  # the brand's stored mentions its terms would no longer keep
    for row in app.store(readonly=True).iter_mention_texts():
        ident = (row["source"], row["url"] or row["text"][:200])
        term = matcher.match_mention(row["title"], row["text"], row["kind"])
        if row["brand"] == brand and term is None and row["matched_term"] != "*":
            dropped += 1
        if ident in seen:
            continue
        seen.add(ident)
        scanned += 1
        if term is None:
            continue
        matched += 1
        if len(shown) < limit:
            shown.append({"created_at": row["created_at"], "source": row["source"], "term": term,
                          "text": _snippet(row["title"], row["text"], term)})
    if fmt == "json":
        for r in shown:
            click.echo(json.dumps(r, ensure_ascii=False))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"{brand}: include {list(terms.include)}, exclude {list(terms.exclude)}")
        for col in ("when", "source", "matched term", "text"):
            table.add_column(col, overflow="fold", max_width=80 if col == "text" else None)
        for r in shown:
            table.add_row(r["created_at"][:16].replace("T", " "), r["source"], r["term"], r["text"])
        Console(markup=False, highlight=False, width=None if sys.stdout.isatty() else 160).print(table)
    click.echo(f"{matched} of {scanned} stored item(s) match; {dropped} of {brand}'s stored mention(s) would "
               f"not match these terms now")


def _snippet(title: str | None, text: str, term: str, width: int = 160) -> str:
    joined = f"{title}: {text}" if title and title not in text else text
    joined = " ".join(joined.split())
    at = joined.lower().find(term.lower())
    start = max(0, at - width // 3) if at >= 0 else 0
    out = joined[start:start + width]
    return ("…" if start else "") + out + ("…" if start + width < len(joined) else "")


def _preview_relevance(app, brand_settings, limit: int, fmt: str) -> None:
    """The brand's stored mentions (the current model's vectors) its relevance model scores
    under the threshold, or that a user marked not about it; nothing is written."""
    from monitor import relevance

    brand = brand_settings.name
    store = app.store(readonly=True)
    classifier = make_classifier(app.settings)
    model = relevance.models_for(store, classifier, [brand_settings]).get(brand)
    if model is None:
        click.echo(f"{brand} has no relevance model: it needs about and not_about examples (texts in config, or "
                   "mentions marked on the web page); every mention counts as relevant")
        return
    rows = store.relevance.vectors(brand, classifier.name)
    scores = relevance.score_blobs(model, [r["embedding"] for r in rows])
    marked = {r["mention_id"]: r["label"] for r in store.accounts.corrections("relevance")}
    hidden = [(r, s) for r, s in zip(rows, scores, strict=True)
              if marked.get(r["mention_id"]) == relevance.NOT_ABOUT
              or (marked.get(r["mention_id"]) != relevance.ABOUT and s is not None and s < model.threshold)]
    shown = [{"created_at": r["created_at"], "source": r["source"], "mention_id": r["mention_id"],
              "score": s, "marked": marked.get(r["mention_id"]), "text": _snippet(r["title"], r["text"], "")}
             for r, s in hidden[:limit]]
    if fmt == "json":
        for item in shown:
            click.echo(json.dumps(item, ensure_ascii=False))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"{brand}: hidden by relevance (threshold {model.threshold}; learned from "
                            f"{model.positives} about and {model.negatives} not-about examples)")
        for col in ("when", "source", "score", "text"):
            table.add_column(col, overflow="fold", max_width=80 if col == "text" else None)
        for item in shown:
            score = "marked" if item["marked"] == relevance.NOT_ABOUT else f"{item['score']:.2f}"
            table.add_row(item["created_at"][:16].replace("T", " "), item["source"], score, item["text"])
        Console(markup=False, highlight=False, width=None if sys.stdout.isatty() else 160).print(table)
    scored = sum(s is not None for s in scores)
    click.echo(f"relevance would hide {len(hidden)} of {brand}'s {scored} scored mention(s) "
               f"({classifier.name}'s vectors)")


@click.command()
@click.argument("source_name", metavar="SOURCE")
@click.option("--since", required=True, help="A date (2026-11-01) or a duration back from now (30d).")
@click.option("--max-pages", type=int, default=500, show_default=True, help="Pages per query at most.")
@click.pass_obj
def backfill(app, source_name, since, max_pages):
    """Collect SOURCE's history back to --since: each query's cursor is set back, then walked."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from monitor import pipeline

    when = parse_since(since)
    now = datetime.now(UTC)
    if when >= now:
        raise click.BadParameter("--since must be in the past")
    store = app.store()
    sources = build_sources(app.settings, source_name)
    done = []  # each walked source's RunStats
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TextColumn("{task.fields[info]}"), TimeElapsedColumn(), disable=not sys.stderr.isatty()) as bar:
        for source, matcher, _ss in sources:
            moved = getattr(source, "cursor_since", lambda q, w: None)
            queries = source.queries()
            cursors = {q: moved(q, when) for q in queries}
            if all(c is None for c in cursors.values()):
                click.echo(f"{source.key}: this source cannot go back in time (a feed shows only its latest "
                           "entries); nothing to backfill", err=True)
                continue
            for q, c in cursors.items():
                if c is not None:
                    store.set_cursor(source.key, q, c)
            tasks = {q: bar.add_task(f"{source.key} {q[:40]}", total=100, info="") for q in queries}
            span: dict[str, list[datetime]] = {}
            counts: dict[str, list[int]] = {q: [0, 0, 0] for q in queries}

            def on_page(query, result, new, tasks=tasks, span=span, counts=counts):
                c = counts[query]
                c[0] += 1
                c[1] += len(result.mentions)
                c[2] += new
                for m in result.mentions:
                    lo_hi = span.setdefault(query, [m.created_at, m.created_at])
                    lo_hi[0], lo_hi[1] = min(lo_hi[0], m.created_at), max(lo_hi[1], m.created_at)
                covered = (span[query][1] - span[query][0]) / (now - when) if query in span else 0.0
                done = 100 if result.done else min(99, covered * 100)
                bar.update(tasks[query], completed=done, info=f"pages {c[0]}, fetched {c[1]}, new {c[2]}")

            stats = pipeline.collect(store, source, matcher, max_pages=max_pages, on_page=on_page)
            for q in queries:
                bar.update(tasks[q], completed=100)
            click.echo(f"{source.key}: fetched {stats.fetched}, new {stats.new}, skipped {stats.skipped}"
                       + (f", errors: {'; '.join(stats.errors)}" if stats.errors else ""))
            done.append(stats)
    failed = [st.source_key for st in done if not st.ok]
    if done:
        click.echo(f"backfill: {len(done)} source(s), fetched {sum(st.fetched for st in done)}, new "
                   f"{sum(st.new for st in done)}; "
                   + (f"failed: {', '.join(failed)} (errors above)"
                      if failed else "no errors"))
    if failed:
        sys.exit(1)


@click.group()
def cursor():
    """A source's stored cursors: where each of its queries resumes."""


@cursor.command("show")
@click.argument("source_name", metavar="SOURCE")
@click.pass_obj
def cursor_show(app, source_name):
    """Print SOURCE's cursor for each of its queries (its key 'Brand:name', name or type)."""
    store = app.store(readonly=True)
    for source, _matcher, _ss in build_sources(app.settings, source_name):
        for query in source.queries():
            click.echo(f"{source.key} {query!r}: {store.get_cursor(source.key, query) or '(none: starts afresh)'}")


@cursor.command("reset")
@click.argument("source_name", metavar="SOURCE")
@click.option("--query", "only_query", help="Only this query's cursor (as `monitor cursor show` prints it).")
@click.pass_obj
def cursor_reset(app, source_name, only_query):
    """Forget SOURCE's cursors: its next run starts afresh, as on its first run (the look-back
    window). Stored mentions stay; items fetched again are not stored twice."""
    store = app.store()
    done = 0
    for source, _matcher, _ss in build_sources(app.settings, source_name):
        for query in source.queries():
            if only_query is not None and query != only_query:
                continue
            store.set_cursor(source.key, query, None)
            done += 1
            click.echo(f"{source.key} {query!r}: cursor reset; the next run starts afresh")
    if not done:
        raise MonitorError(f"{source_name!r} has no query {only_query!r}")
