"""Command line: `python -m pipeline <command>` (also installed as `rode-draad`).

Each stage has a subcommand; `analyze` runs them all over a folder of stories.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import __version__
from .settings import Settings, parse_bound


def _common(p: argparse.ArgumentParser, period: bool = True) -> None:
    p.add_argument("--corpus", metavar="DIR", help="folder of stories (default: corpus/stories)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: build; with a period: build/<period>)")
    if period:
        p.add_argument("--since", metavar="DATE", help="first date analysed: YYYY, YYYY-MM or YYYY-MM-DD")
        p.add_argument("--until", metavar="DATE", help="last date analysed: YYYY, YYYY-MM or YYYY-MM-DD")
        p.add_argument("--period", metavar="P", help="a period instead of --since/--until: 2024, 2024H1, 2024Q3, 2024-03")
    p.add_argument("--review", metavar="FILE", help="the editor's review sheet (default: corpus/review/review.xlsx)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--recluster", action="store_true",
                   help="cluster every theme from scratch instead of adding new phrases to the previous run's clusters")


STAGE_HELP = {
    "parse": "stage 1-2: ingest and parse with the Dutch spaCy pipeline (sentences.parquet)",
    "themes": "stages up to themes: classify each story into the nine themes (themes.csv)",
    "factors": "stages up to factors: success factors and bottlenecks with short phrases (factors.csv)",
    "cluster": "stages up to clusters: group factors per theme and polarity (clusters.csv, review.xlsx)",
    "draft": "all stages: the draft rode draad in Markdown, HTML, Word and JSON (same as analyze)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rode-draad",
        description="Rode Draad: draft the recurring success factors and bottlenecks (the 'rode draad') "
                    "per theme from Dutch labour-market practice stories.",
    )
    parser.add_argument("--version", action="version", version=f"rode-draad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("analyze", help="run every stage over a folder of stories (the main job)",
                       description="Run the whole pipeline over a folder of stories and write all outputs to the "
                                   "output folder: stories.parquet, ingest-report.csv and the outputs of the later "
                                   "stages.")
    _common(p)

    for stage, text in STAGE_HELP.items():
        p = sub.add_parser(stage, help=text, description=text + ". Earlier stages run too (their outputs are "
                           "cached); every output up to this stage is written to the output folder.")
        _common(p)

    p = sub.add_parser("ingest", help="stage 1: read story files into build/stories.parquet",
                       description="Read Markdown (with front matter), .txt, .html, .docx files and CSV/JSONL "
                                   "exports from a folder (recursively); validate and normalise them. Writes "
                                   "stories.parquet and ingest-report.csv (one line per problem). Bad files are "
                                   "reported and skipped; input files are never modified.")
    _common(p)

    p = sub.add_parser("evaluate", help="measure every stage under cross-validation; writes docs/evaluation.md",
                       description="Cross-validated evaluation on the bundled, annotated corpus: themes (classifier "
                                   "vs keyword baseline), factor extraction (model vs cue-word baseline, phrase "
                                   "quality), clusters and draft against the 2022 reference lists (gold and "
                                   "extracted input). Writes docs/evaluation.md and build/evaluation/.")
    p.add_argument("--out", metavar="DIR", help="output folder for error lists (default: build)")
    p.add_argument("--doc", metavar="FILE", default="docs/evaluation.md", help="report file (default: docs/evaluation.md)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3, help="repeats of the theme cross-validation (default 3)")
    p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("notebooks", help="execute the research notebooks headless (executed copies in build/notebooks/)",
                       description="Run notebooks/*.ipynb top to bottom on the outputs in the output folder (a run "
                                   "of the pipeline is made first when there is none). Executed copies are written "
                                   "to <out>/notebooks/; the stored notebooks stay without outputs.")
    p.add_argument("--out", metavar="DIR", help="the run's output folder (default: build)")
    p.add_argument("names", nargs="*", help="only these notebooks (e.g. 01-corpus)")

    p = sub.add_parser("corpus", help="the bundled corpus: validate annotations, write statistics",
                       description="Work with the bundled, annotated corpus in corpus/.")
    csub = p.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)
    c = csub.add_parser("check", help="validate stories and gold annotations (exit 1 on problems)")
    c.add_argument("--corpus", metavar="DIR")
    c = csub.add_parser("stats", help="write docs/corpus.md with counts per theme, region, year, form")
    c.add_argument("--write", metavar="FILE", default=None, help="write the Markdown here (default: print)")
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    from .draft import Period, parse_period

    s = Settings.from_env()
    since = parse_bound(getattr(args, "since", None), start=True)
    until = parse_bound(getattr(args, "until", None), start=False)
    if getattr(args, "period", None):
        p = parse_period(args.period)
        since, until = p.since, p.until
    out = getattr(args, "out", None)
    s = s.replace(corpus_dir=getattr(args, "corpus", None), out_dir=out, since=since, until=until,
                  review_file=getattr(args, "review", None),
                  progress=False if getattr(args, "quiet", False) else None,
                  incremental_clusters=False if getattr(args, "recluster", False) else None)
    if (s.since or s.until) and getattr(args, "command", "") != "ingest":
        s = s.replace(out_dir=s.out_dir / Period(s.since, s.until).label)  # build/<period>/
    return s


def cmd_ingest(settings: Settings) -> int:
    from .ingest import ingest, select_period
    from .outputs import write_csv, write_parquet

    result = ingest(settings)
    stories = select_period(result.stories, settings.since, settings.until)
    out = settings.out_dir
    write_parquet(out / "stories.parquet", stories)
    write_csv(out / "ingest-report.csv", result.report)
    print(result.summary())
    if settings.since or settings.until:
        print(f"period {settings.since or '...'} to {settings.until or '...'}: {len(stories)} stories selected")
    print(f"wrote {out / 'stories.parquet'} and {out / 'ingest-report.csv'}")
    return 0


def cmd_analyze(settings: Settings, until: str = "draft") -> int:
    from .review import ReviewSheetError
    from .run import analyze, summary, write_outputs

    start = time.monotonic()
    try:
        run = analyze(settings, until=until)
    except ReviewSheetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    written = write_outputs(run, settings.out_dir)
    print(summary(run))
    print(f"analyze: done in {time.monotonic() - start:.1f}s; wrote {len(written)} files to {settings.out_dir}/")
    return 0


def cmd_corpus(args: argparse.Namespace, settings: Settings) -> int:
    from .corpus import check, render_statistics, statistics

    if args.corpus_command == "check":
        problems = check(settings)
        for p in problems:
            print(p)
        n = len(list(Path(settings.corpus_dir).glob("*.md")))
        print(f"corpus check: {n} stories, {len(problems)} problem(s)")
        return 1 if problems else 0
    text = render_statistics(statistics(settings))
    if args.write:
        from .outputs import write_text

        write_text(Path(args.write), text)
        print(f"wrote {args.write}")
    else:
        print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    from .nlp import ModelNotAvailable

    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command == "ingest":
            return cmd_ingest(settings)
        if args.command == "analyze":
            return cmd_analyze(settings)
        if args.command in STAGE_HELP:
            return cmd_analyze(settings, until=args.command)
        if args.command == "corpus":
            return cmd_corpus(args, settings)
        if args.command == "notebooks":
            from .notebooks import execute_notebooks

            for path in execute_notebooks(settings.out_dir, settings.out_dir / "notebooks", args.names or None):
                print(f"executed {path}")
            return 0
        if args.command == "evaluate":
            from .evaluate import run_evaluation, write_evaluation

            ev = run_evaluation(settings, folds=args.folds, repeats=args.repeats)
            for path in write_evaluation(ev, settings, args.doc):
                print(f"wrote {path}")
            return 0
    except ModelNotAvailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; outputs already written are complete, nothing half-written was left", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
