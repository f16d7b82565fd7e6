"""The ``rag`` command line: index, ask, serve, eval, mcp. Errors become one line and a non-zero exit code.

At ~340 lines it is over the house's ~300: each command's options are declared beside it, and the
settings and the one-line error handling all commands share sit with them.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rag.types import MAX_TOP_K

if TYPE_CHECKING:
    from datetime import date

    from rag.pipeline import Pipeline
    from rag.settings import Settings
    from rag.types import Answer, Filters

app = typer.Typer(
    help="Ask questions about news articles; every answer sentence is quoted and cited.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
log = logging.getLogger("rag.cli")

CorpusOpt = Annotated[Path | None, typer.Option("--corpus", help="Article folder [env RAG_CORPUS_DIR].")]
IndexOpt = Annotated[Path | None, typer.Option("--index", help="Index folder [env RAG_INDEX_DIR].")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details to stderr.")]
FromOpt = Annotated[
    str | None, typer.Option("--from", help="Only articles dated on or after this day (YYYY-MM-DD).")
]
ToOpt = Annotated[
    str | None, typer.Option("--to", help="Only articles dated on or before this day (YYYY-MM-DD).")
]
SourceOpt = Annotated[
    list[str] | None,
    typer.Option("--source", help="Only articles from this source (repeatable: any of them)."),
]
DocOpt = Annotated[list[str] | None, typer.Option("--doc", help="Only this article, by id (repeatable).")]


def _settings(verbose: bool = False, **overrides: Any) -> Settings:
    from rag.settings import load_settings

    settings = load_settings(
        corpus_dir=overrides.pop("corpus", None), index_dir=overrides.pop("index", None), **overrides
    )
    level = logging.INFO if verbose else getattr(logging, settings.server.log_level.upper(), logging.WARNING)
    logging.basicConfig(
        level=min(level, logging.INFO) if verbose else level,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return settings


def _pipeline(settings: Settings) -> Pipeline:
    from rag.pipeline import build_pipeline

    return build_pipeline(settings)


@app.command()
def index(
    corpus: CorpusOpt = None,
    index: IndexOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Re-embed everything.")] = False,
    workers: Annotated[
        int,
        typer.Option(
            "--workers", min=1, help="Processes embedding in parallel (RAG_STORE=postgres; 1 = in this one)."
        ),
    ] = 1,
    verbose: VerboseOpt = False,
) -> None:
    """Build or update the index from the corpus: new and changed articles are embedded, and those gone
    from the folder removed (on a shared database too, RAG_DATABASE_URL: other servers' uploads included)."""
    settings = _settings(verbose, corpus=corpus, index=index)
    pipeline = _pipeline(settings)
    progress = sys.stderr.isatty() or verbose
    report = pipeline.update_index(progress=progress, force=force, workers=workers, whole=True)
    for skipped in report.skipped:
        typer.echo(f"skipped {skipped.path}: {skipped.reason}", err=True)
    state = "already up to date" if report.up_to_date else f"built {report.build_id}"
    typer.echo(
        f"index {state} in {report.seconds:.1f}s: {report.files} files, {report.chunks} chunks, "
        f"{report.embedded_files} embedded, {report.reused_files} reused, {report.removed_files} removed, "
        f"{len(report.skipped)} skipped"
    )


@app.command()
def ask(
    question: Annotated[
        str | None, typer.Argument(help="The question; omit it for an interactive session.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the answer as JSON (the API contract).")
    ] = False,
    top_k: Annotated[
        int | None, typer.Option("--top-k", min=1, max=MAX_TOP_K, help="Passages to return.")
    ] = None,
    corpus: CorpusOpt = None,
    index: IndexOpt = None,
    verbose: VerboseOpt = False,
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    sources: SourceOpt = None,
    doc_ids: DocOpt = None,
) -> None:
    """Answer a question from the articles, with the quoted sentences and where they stand."""
    filters = _filters(date_from, date_to, sources, doc_ids)
    settings = _settings(verbose, corpus=corpus, index=index, top_k=top_k)
    pipeline = _pipeline(settings)
    pipeline.update_index(progress=sys.stderr.isatty())
    if question is not None:
        _print_answer(pipeline.ask(question, filters=filters), as_json)
        return
    _interactive(pipeline, as_json, filters)


def _filters(
    date_from: str | None, date_to: str | None, sources: list[str] | None, doc_ids: list[str] | None
) -> Filters | None:
    """The ``rag ask`` filter flags as :class:`~rag.types.Filters` (None when none is given)."""
    from rag.types import Filters

    first, last = _day(date_from, "--from"), _day(date_to, "--to")
    if first and last and first > last:
        raise typer.BadParameter("--from is after --to")
    filters = Filters(first, last, tuple(sources or ()), tuple(doc_ids or ()))
    return filters if filters.active else None


def _day(value: str | None, flag: str) -> date | None:
    from datetime import date

    if value is None:
        return None
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{flag} takes a day written YYYY-MM-DD, such as 2024-07-01") from None


def _interactive(pipeline: Pipeline, as_json: bool, filters: Filters | None = None) -> None:
    from rag.errors import RagError
    from rag.retrieval.followup import Turn

    typer.echo("Ask about the articles (German or English). Empty line or Ctrl-D to quit.", err=True)
    history: list[Turn] = []
    while True:
        try:
            question = input("? ").strip()
        except (EOFError, KeyboardInterrupt):
            typer.echo("", err=True)
            return
        if not question:
            return
        try:
            answer = pipeline.ask(question, history=history, filters=filters)
        except RagError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            continue
        _print_answer(answer, as_json)
        history += [Turn("user", question), Turn("assistant", answer.answer)]


def _print_answer(answer: Answer, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return
    typer.echo(answer.answer)
    if answer.filters:
        f = answer.filters
        undated = f", {f.undated_excluded} undated left out by the date filter" if f.undated_excluded else ""
        typer.echo(f"\n(filtered: {f.documents} matching articles searched{undated})")
    if answer.citations:
        en = answer.language == "en"
        newest = ""
        if answer.citation_order == "newest_first":  # the cited articles' dates differ
            newest = " (newest first)" if en else " (neueste zuerst)"
        typer.echo(("\nSources" if en else "\nQuellen") + newest + ":")
        for c in answer.citations:
            date = f", {c.date}" if c.date else (", undated" if newest else "")
            page = f", page {c.page}" if c.page is not None else ""
            typer.echo(f"  [{c.n}] {c.title}{date} ({c.doc_id}{page}, characters {c.start}-{c.end})")
    else:
        typer.echo("\nClosest passages:" if answer.language == "en" else "\nNächstliegende Stellen:")
        for p in answer.passages[:3]:
            snippet = " ".join(p.text.split())
            snippet = snippet if len(snippet) <= 160 else snippet[:157] + "..."
            typer.echo(f"  - {p.title} ({p.doc_id}, characters {p.start}-{p.end}): {snippet}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind [env RAG_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [env RAG_PORT].")] = None,
    corpus: CorpusOpt = None,
    index: IndexOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Start the chat UI and the HTTP API in one server."""
    settings = _settings(verbose, corpus=corpus, index=index, host=host, port=port)
    from rag.server import run

    run(settings, announce=lambda line: typer.echo(line, err=True))


@app.command()
def mcp(corpus: CorpusOpt = None, index: IndexOpt = None, verbose: VerboseOpt = False) -> None:
    """Serve the articles to an assistant as an MCP server over stdio (tools: ask, search, get_document,
    list_documents)."""
    import threading

    import anyio

    from rag.mcp_server import create_mcp

    settings = _settings(verbose, corpus=corpus, index=index)
    pipeline = _pipeline(settings)
    pipeline.warm_up()  # stdout is the protocol's: progress and logs go to stderr only
    threading.Thread(target=pipeline.prepare_lexicon, name="lexicon", daemon=True).start()  # as rag serve
    anyio.run(create_mcp(pipeline).run_stdio_async)


EvalFileArg = Annotated[Path, typer.Argument(help="A SQuAD-format file, or a question set for --corpus.")]
QuestionsOpt = Annotated[
    Path | None, typer.Option("--questions", help="A parallel SQuAD file whose questions are asked instead.")
]
UnanswerableOpt = Annotated[
    Path | None, typer.Option("--unanswerable", help="Questions that must be abstained on (JSON list).")
]
LimitOpt = Annotated[int | None, typer.Option("--limit", min=1, help="Ask a random sample of this size.")]
OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="Where the JSON report is written.")]
WorkDirOpt = Annotated[
    Path | None, typer.Option("--work-dir", help="Keep the evaluation corpus and index here (reused).")
]
HistoryOpt = Annotated[
    bool, typer.Option("--history", help="Also ask each question after the one before it (a chat).")
]
AfterUnrelatedOpt = Annotated[
    bool,
    typer.Option(
        "--after-unrelated",
        help="Also ask each question after one about another article (a standalone one must lose nothing).",
    ),
]
WithoutGoldOpt = Annotated[
    bool,
    typer.Option(
        "--without-gold",
        help="Also ask each question with its gold paragraph hidden: how often the bot then abstains.",
    ),
]


@app.command(name="eval")
def eval_(
    file: EvalFileArg,
    questions: QuestionsOpt = None,
    unanswerable: UnanswerableOpt = None,
    limit: LimitOpt = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the --limit sample.")] = 0,
    output: OutputOpt = Path("eval-report.json"),
    work_dir: WorkDirOpt = None,
    history: HistoryOpt = False,
    without_gold: WithoutGoldOpt = False,
    after_unrelated: AfterUnrelatedOpt = False,
    corpus: CorpusOpt = None,
    index: IndexOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Measure retrieval, answers, citations, abstention and latency; print a table, write JSON."""
    from rag.evaluation import squad
    from rag.evaluation.report import format_report
    from rag.evaluation.run import evaluate_question_set, evaluate_squad

    settings = _settings(verbose, corpus=corpus, index=index)
    data = squad.read_json(file)
    extra = squad.load_question_set(squad.read_json(unanswerable)) if unanswerable else []
    if squad.is_squad(data):
        parallel = squad.read_json(questions) if questions else None
        nope = [q.text for q in extra if q.answer is None]
        squad_set = squad.load_squad(data, parallel)
        report = evaluate_squad(
            squad_set, settings, limit, seed, work_dir, nope, history, without_gold, after_unrelated
        )
    else:
        if without_gold:
            raise typer.BadParameter("--without-gold needs a SQuAD file (gold paragraphs)")
        asked = squad.sample(squad.load_question_set(data), limit, seed) + extra
        report = evaluate_question_set(asked, settings, squad.load_followups(data), after_unrelated)
    report = {"file": str(file), "questions_file": str(questions) if questions else None, **report}
    output.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    typer.echo(format_report(report))
    typer.echo(f"\nreport written to {output}", err=True)


def main() -> None:
    """Entry point: runs the app and turns the product's errors into one line and exit code 1."""
    from pydantic import ValidationError

    from rag.errors import RagError

    try:
        app(standalone_mode=False)
    except RagError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise SystemExit(1) from None
    except ValidationError as exc:
        # a setting is named as the user sets it: its flat name (RAG_<NAME>), not its place in the tree
        problems = "; ".join(f"{_setting_name(e['loc'])}: {e['msg']}" for e in exc.errors())
        typer.echo(f"error: invalid setting: {problems}", err=True)
        raise SystemExit(2) from None
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        raise SystemExit(130) from None
    except OSError as exc:
        typer.echo(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), err=True)
        raise SystemExit(1) from None
    except Exception as exc:  # click usage errors and anything unexpected: one line, no traceback
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            raise SystemExit(exc.exit_code) from None
        log.debug("unexpected error", exc_info=True)
        typer.echo(f"error: {exc.__class__.__name__}: {exc}", err=True)
        raise SystemExit(1) from None


def _setting_name(loc: tuple[int | str, ...]) -> str:
    """The flat name of the setting at ``loc`` in the tree (``("index", "chunk_tokens")``: chunk_tokens)."""
    return next((str(part) for part in reversed(loc) if isinstance(part, str)), "")


if __name__ == "__main__":  # pragma: no cover
    main()
