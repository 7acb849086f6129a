"""Running the stages in order: `analyze` goes from a folder of stories to the draft.

Each stage is a plain function over tables; this module only wires them together, and returns
every table so the command line (and notebooks, and the benchmark) can write or inspect them.
The models learn from the bundled, annotated corpus (and the editor's corrections) and are then
applied to whatever folder is analysed.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import cluster as cluster_stage
from . import factors as factor_stage
from . import references as reference_stage
from . import themes as theme_stage
from .corpus import load_annotations
from .draft import Period, build_draft, match_previous
from .frames import in_story_order, isin
from .ingest import IngestResult, ingest, select_period
from .settings import Settings


@dataclass
class RunResult:
    settings: Settings
    ingest: IngestResult
    stories: pd.DataFrame  # the stories of the period analysed
    # every story's sentences after `parse`; after later stages only those of the stories that
    # were not in the per-story memo (see `_Models.needing_sentences`)
    sentences: pd.DataFrame
    themes: pd.DataFrame
    factors: pd.DataFrame
    clusters: pd.DataFrame
    members: pd.DataFrame
    draft: dict
    timings: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    editor: object = None


@dataclass
class Training:
    """What the models learn from: the bundled corpus, parsed, with its gold labels."""

    stories: pd.DataFrame
    sentences: pd.DataFrame
    labels: pd.DataFrame
    gold_factors: pd.DataFrame


def load_training(settings: Settings, nlp, target: IngestResult | None = None) -> Training:
    """The annotated bundled corpus, parsed (from the cache when possible)."""
    from .nlp import parse_stories

    bundled = Settings().corpus_dir
    same = target is not None and Path(settings.corpus_dir).resolve() == bundled.resolve()
    corpus_settings = settings.replace(corpus_dir=bundled, progress=False)
    stories = target.stories if same else ingest(corpus_settings, echo=None).stories
    labels, gold = load_annotations(corpus_settings)
    stories = stories[stories["story_id"].isin(labels["story_id"])].reset_index(drop=True)
    return Training(stories, parse_stories(stories, corpus_settings, nlp), labels, gold)


STAGES = ("ingest", "parse", "themes", "factors", "cluster", "draft")


@contextmanager
def fewer_gc_passes(gen0: int = 100_000):
    """Run with a higher first-generation threshold of Python's cyclic garbage collector. A run
    builds millions of long-lived small objects (table rows, draft records); with the default
    threshold (700) the collector walks all of them again and again (about 1 s of a 10 s re-run
    at 10,000 stories). Garbage is still collected, in fewer and larger passes; the previous
    thresholds are restored afterwards."""
    import gc

    old = gc.get_threshold()
    gc.set_threshold(max(gen0, old[0]), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def analyze(settings: Settings, echo=print, period: Period | None = None, editor=None, until: str = "draft",
            on_stage=None) -> RunResult:
    """Run the stages over settings.corpus_dir for the period (settings.since/until), up to and
    including `until` (one of STAGES); tables of later stages are returned empty.

    `editor` is an optional `review.EditorInput` (verdicts and theme corrections); by default the
    editor's sheet at settings.review_file is read (before anything is written). `on_stage(name)`
    is called as each stage starts (the benchmark uses it to attribute memory to stages).
    """
    with fewer_gc_passes():
        return _analyze(settings, echo, period, editor, until, on_stage)


def _analyze(settings: Settings, echo, period: Period | None, editor, until: str, on_stage) -> RunResult:
    """`analyze` without the collector setting."""
    from .nlp import load, parse_stories

    timings: dict[str, float] = {}
    notes: list[str] = []

    stage_stack: list[str] = []

    def timed(name):
        class _T:
            def __enter__(self):
                stage_stack.append(name)
                if on_stage is not None:
                    on_stage(name)
                self.t = time.monotonic()

            def __exit__(self, *exc):
                timings[name] = timings.get(name, 0.0) + time.monotonic() - self.t
                stage_stack.pop()
                if on_stage is not None and stage_stack:
                    on_stage(stage_stack[-1])  # back to the enclosing stage (load_model inside parse)
        return _T()

    from .review import read_editor_sheet

    period = period or Period(settings.since, settings.until)
    if editor is None:
        editor = read_editor_sheet(settings.review_file)  # raises before anything is written
    notes += editor.problems
    with timed("ingest"):
        result = ingest(settings, echo=echo)
    stories = select_period(result.stories, period.since, period.until)
    empty = RunResult(settings, result, stories, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), pd.DataFrame(),
                      pd.DataFrame(), {}, timings, notes, editor)
    if until == "ingest":
        return empty
    loaded = {}

    def get_nlp():
        """The spaCy pipeline, loaded on first need (a fully cached run never loads it)."""
        if "nlp" not in loaded:
            with timed("load_model"):
                loaded["nlp"] = load(settings)
        return loaded["nlp"]

    with timed("parse"):
        training = load_training(settings, get_nlp, result)
        sentences = parse_stories(stories, settings, get_nlp) if until == "parse" else None
    if until == "parse":
        timings["parse"] -= timings.get("load_model", 0.0)
        empty.sentences = sentences
        return empty

    # --- the models (trained on the bundled corpus and the editor's theme corrections) ------------
    labels = _apply_theme_corrections(training.labels, editor.themes)
    with timed("train"):
        train_docs = theme_stage.story_documents(training.stories, training.sentences)
        # editor's corrections of stories outside the bundled corpus become training labels too
        extra = labels[~labels["story_id"].isin(train_docs["story_id"]) & labels["story_id"].isin(stories["story_id"])]
        if len(extra):
            extra_stories = stories[stories["story_id"].isin(extra["story_id"])]
            train_docs = pd.concat([train_docs, theme_stage.story_documents(
                extra_stories, parse_stories(extra_stories, settings, get_nlp))], ignore_index=True)
        clf = theme_stage.train(train_docs, labels[labels["story_id"].isin(train_docs["story_id"])], settings)
        editor_labels = labels[isin(labels["story_id"], stories["story_id"])][["story_id", "themes"]]
    with timed("train"):
        model = factor_stage.train(training.stories, training.sentences, training.gold_factors, settings)
    models = _Models(clf, model, editor_labels, settings)

    # --- parse what is not known yet, then themes and factors ------------------------------------
    with timed("parse"):
        # only stories whose themes or factors are not in the per-story memo need their sentences
        sentences = parse_stories(models.needing_sentences(stories), settings, get_nlp)
    timings["parse"] -= timings.get("load_model", 0.0)
    with timed("themes"):
        themes = models.themes(stories, sentences)
    if until == "themes":
        empty.sentences, empty.themes = sentences, themes
        return empty
    with timed("factors"):
        factors = models.factors(stories, sentences, themes)
    if until == "factors":
        empty.sentences, empty.themes, empty.factors = sentences, themes, factors
        return empty

    # --- clusters and the draft --------------------------------------------------------------
    with timed("train"):
        # which published 2022 factor a phrase restates (trained on the annotations; cached)
        known = (reference_stage.train(training.gold_factors, settings)
                 if settings.known_factor_hints else None)
    with timed("cluster"):
        clustered = cluster_stage.cluster_factors(factors, stories, threshold=settings.cluster_threshold,
                                                  memo_dir=_cluster_memo_dir(settings, period), references=known)
        clusters, members = clustered.clusters, clustered.members
        from .review import apply_verdicts, refresh_support

        clusters, members, review_notes = apply_verdicts(clusters, members, editor.verdicts)
        attrs = dict(clusters.attrs)
        clusters = refresh_support(clusters, members, stories)
        clusters.attrs.update(attrs)
        notes += review_notes
    if until == "cluster":
        empty.sentences, empty.themes, empty.factors = sentences, themes, factors
        empty.clusters, empty.members = clusters, members
        return empty
    previous, fading = None, None
    prev_period = period.previous()
    if prev_period is not None:
        with timed("trends"):
            prev_stories = select_period(result.stories, prev_period.since, prev_period.until)
            prev_sentences = parse_stories(models.needing_sentences(prev_stories), settings, get_nlp)
            prev_themes = models.themes(prev_stories, prev_sentences)
            prev_factors = models.factors(prev_stories, prev_sentences, prev_themes)
            prev = cluster_stage.cluster_factors(prev_factors, prev_stories, threshold=settings.cluster_threshold,
                                                 references=known)
            previous, fading = match_previous(clusters, members, prev.clusters, prev.members, cluster_similarity)
            notes.append(f"trends: compared with {prev_period.since} t/m {prev_period.until} ({len(prev_stories)} stories)")
    with timed("draft"):
        draft = build_draft(clusters, members, stories, themes, period=period, previous=previous,
                            top_n=settings.top_n, fading=fading)
    return RunResult(settings, result, stories, sentences, themes, factors, clusters, members, draft, timings, notes,
                     editor)


def _cluster_memo_dir(settings: Settings, period: Period) -> Path | None:
    """Where the clusters of this corpus folder and period are kept between runs (or None)."""
    import hashlib
    import shutil

    if not settings.incremental_clusters:
        return None
    key = f"{Path(settings.corpus_dir).resolve()}|{period.since}|{period.until}"
    folder = Path(settings.cache_dir) / "clusters" / hashlib.sha256(key.encode()).hexdigest()[:12]
    if folder.parent.exists():  # keep the memos of the most recently analysed folders and periods
        others = sorted((d for d in folder.parent.iterdir() if d.is_dir() and d != folder),
                        key=lambda d: d.stat().st_mtime, reverse=True)
        for old in others[15:]:
            shutil.rmtree(old, ignore_errors=True)
    return folder


def _sentences_of(sentences: pd.DataFrame, stories: pd.DataFrame) -> pd.DataFrame:
    return sentences[isin(sentences["story_id"], stories["story_id"])]


def _memo_fingerprint(settings: Settings, model_fingerprint: str, module, data_file: str) -> str:
    """What a stage's per-story result depends on besides the story: the spaCy pipeline (its
    parse), the trained model, the stage's code and its data file (for the memo)."""
    import hashlib

    from .nlp import model_fingerprint as nlp_fingerprint
    from .settings import DATA_DIR

    h = hashlib.sha256(f"{nlp_fingerprint(settings)}:{model_fingerprint}".encode())
    h.update(Path(module.__file__).read_bytes())
    h.update((DATA_DIR / data_file).read_bytes())
    return h.hexdigest()[:16]


@dataclass
class _Models:
    """The trained theme classifier and factor model, applied per story with the per-story memo
    (see memo.py): a story whose content, parse and models are unchanged is not computed again."""

    clf: object
    factor_model: object
    editor_labels: pd.DataFrame  # story_id, themes: never overridden by the classifier
    settings: Settings

    def __post_init__(self):
        self.theme_fingerprint = _memo_fingerprint(self.settings, self.clf.fingerprint_, theme_stage, "themes.yaml")
        self.factor_fingerprint = _memo_fingerprint(self.settings, self.factor_model.fingerprint_, factor_stage,
                                                    "cues.yaml")

    def _edited(self, stories: pd.DataFrame) -> pd.Series:
        return isin(stories["story_id"], self.editor_labels["story_id"])

    def needing_sentences(self, stories: pd.DataFrame) -> pd.DataFrame:
        """The stories that must be parsed (or read from the parse cache) for `themes`/`factors`."""
        from .memo import known_hashes

        cache = self.settings.cache_dir
        known = (known_hashes(cache, "themes", self.theme_fingerprint)
                 & known_hashes(cache, "factors", self.factor_fingerprint))
        return stories[~isin(stories["content_hash"], known) | self._edited(stories)]

    def themes(self, stories: pd.DataFrame, sentences: pd.DataFrame) -> pd.DataFrame:
        """The themes table for `stories`; stories an editor labelled keep those labels."""
        from .memo import memoized

        edited = self._edited(stories)

        def compute(sub: pd.DataFrame, labels=None) -> pd.DataFrame:
            return theme_stage.classify(theme_stage.story_documents(sub, _sentences_of(sentences, sub)), self.clf,
                                        labels)

        parts = [memoized(stories[~edited], compute, self.settings.cache_dir, "themes", self.theme_fingerprint)]
        if edited.any():
            parts.append(compute(stories[edited], self.editor_labels))
        return in_story_order(pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True),
                              stories["story_id"])

    def factors(self, stories: pd.DataFrame, sentences: pd.DataFrame, themes: pd.DataFrame) -> pd.DataFrame:
        """The factors table for `stories`, with each factor's themes from the themes table."""
        from .memo import memoized

        def compute(sub: pd.DataFrame) -> pd.DataFrame:
            return factor_stage.extract(sub, _sentences_of(sentences, sub), self.factor_model)

        factors = memoized(stories, compute, self.settings.cache_dir, "factors", self.factor_fingerprint)
        factors["themes"] = factors["story_id"].map(dict(zip(themes["story_id"], themes["themes"]))).fillna("")
        return factors


def cluster_similarity(a: list[str], b: list[str]):
    """Cosine similarity between two lists of cluster texts (for matching periods)."""
    vec = cluster_stage.PhraseVectorizer().fit(a + b, a + b)
    return (vec.transform(a, a) @ vec.transform(b, b).T).toarray()


def _apply_theme_corrections(labels: pd.DataFrame, corrections: pd.DataFrame) -> pd.DataFrame:
    """Editor theme corrections replace gold labels and add labels for other stories."""
    if corrections is None or corrections.empty:
        return labels
    corrected = dict(zip(corrections["story_id"], corrections["themes"]))
    out = labels.copy()
    out["themes"] = [corrected.get(s, t) for s, t in zip(out["story_id"], out["themes"])]
    new = corrections[~corrections["story_id"].isin(out["story_id"])]
    out = pd.concat([out, new.assign(form="", origin="editor")], ignore_index=True)
    out["main_theme"] = [t[0] if t else "" for t in out["themes"]]
    return out


PARALLEL_WRITE_FROM = 1000  # stories; below this, forking costs more than it saves


def write_outputs(run: RunResult, out_dir: Path, parallel: bool | None = None) -> list[Path]:
    """Write every table and the draft in all formats to out_dir (atomically, file by file).

    `parallel`: write the review sheet in a forked child process while this one writes the rest
    (the two largest pieces of writing, on the two cores). None: on Linux, from
    PARALLEL_WRITE_FROM stories. A failure in the child is raised here, with its traceback."""
    if parallel is None:
        parallel = sys.platform.startswith("linux") and len(run.stories) >= PARALLEL_WRITE_FROM
    with fewer_gc_passes():
        return _write_outputs(run, out_dir, parallel and hasattr(os, "fork"))


def _forked(job) -> Callable[[], list]:
    """Start `job()` (returning a list of paths) in a forked child; return a function that waits
    for the child and returns the paths, or raises RuntimeError with the child's traceback."""
    import json
    import traceback

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run the job, report, and leave without any cleanup of the parent's state
        os.close(read_end)
        code = 0
        try:
            message = {"paths": [str(p) for p in job()]}
        except BaseException:  # noqa: BLE001 - everything is reported to the parent
            message, code = {"error": traceback.format_exc()[-8000:]}, 1
        try:
            with os.fdopen(write_end, "w", encoding="utf-8") as pipe:
                json.dump(message, pipe)
        finally:
            os._exit(code)
    os.close(write_end)

    def wait() -> list:
        with os.fdopen(read_end, encoding="utf-8") as pipe:
            text = pipe.read()
        _, status = os.waitpid(pid, 0)
        try:
            message = json.loads(text)
        except ValueError:
            message = {"error": f"the writing process ended without a report (status {status})"}
        if status != 0 or "error" in message:
            raise RuntimeError(f"writing the review sheet failed:\n{message.get('error', status)}")
        return [Path(p) for p in message["paths"]]

    return wait


def _write_outputs(run: RunResult, out_dir: Path, parallel: bool = False) -> list[Path]:
    from .outputs import write_bytes, write_csv, write_parquet, write_text
    from .render.docx_out import render_docx
    from .render.html import render_html
    from .render.json_out import render_json_bytes
    from .render.markdown import render_markdown
    from .review import review_tables, write_review

    out = Path(out_dir)

    def review() -> list[Path]:
        return write_review(review_tables(run.clusters, run.members, run.stories, run.themes, run.editor,
                                          top=run.settings.review_top), out)

    has_clusters = bool(len(run.clusters.columns))
    wait_for_review = _forked(review) if has_clusters and parallel else None
    written: list[Path] = []
    try:
        written += [write_parquet(out / "stories.parquet", run.stories),
                    write_csv(out / "ingest-report.csv", run.ingest.report)]
        if len(run.sentences) and not len(run.themes.columns):  # the `parse` command: every story's sentences
            written.append(write_parquet(out / "sentences.parquet", run.sentences))
        else:  # a later stage ran: its sentences are partial (see RunResult); no stale copy stays behind
            (out / "sentences.parquet").unlink(missing_ok=True)
        if len(run.themes):
            written.append(write_csv(out / "themes.csv", run.themes))
        if len(run.factors.columns):
            written += [write_csv(out / "factors.csv", run.factors),
                        write_parquet(out / "factors.parquet", run.factors)]
        if has_clusters:
            written += [write_csv(out / "clusters.csv", run.clusters),
                        write_csv(out / "cluster-members.csv", run.members)]
            if wait_for_review is None:
                written += review()
        if run.draft:
            written += [write_bytes(out / "draft.json", render_json_bytes(run.draft)),
                        write_text(out / "rode-draad.md", render_markdown(run.draft)),
                        write_text(out / "rode-draad.html", render_html(run.draft)),
                        write_bytes(out / "rode-draad.docx", render_docx(run.draft))]
        written.append(write_text(out / "run-summary.txt", summary(run) + "\n"))
    finally:
        if wait_for_review is not None:  # always wait for the child, also when writing here failed
            written += wait_for_review()
    return written


def summary(run: RunResult) -> str:
    """The run summary printed at the end of `analyze`."""
    lines = [run.ingest.summary(), f"stories analysed: {len(run.stories)}"
             + (f"; sentences: {len(run.sentences)}" if len(run.sentences) and not len(run.themes.columns) else "")]
    if len(run.themes):
        counts = {}
        for ts in run.themes["themes"]:
            for t in filter(None, str(ts).split(";")):
                counts[t] = counts.get(t, 0) + 1
        lines.append("themes: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda x: -x[1])))
        flags = run.themes["flag"].value_counts().to_dict()
        lines.append("theme flags: " + ", ".join(f"{k or 'ok'} {v}" for k, v in flags.items()))
    if len(run.factors.columns):
        pol = run.factors["polarity"].value_counts().to_dict()
        lines.append(f"factors: {pol.get('succes', 0)} succes, {pol.get('knelpunt', 0)} knelpunt")
    if len(run.clusters.columns):
        lines.append(f"clusters: {len(run.clusters)}")
    lines += run.notes
    lines.append("time: " + ", ".join(f"{k} {v:.1f}s" for k, v in run.timings.items()))
    return "\n".join(lines)
