"""Running the stages in order: `analyze` goes from a folder of stories to the draft.

Each stage is a plain function over tables; this module only wires them together, and returns
every table so the command line (and notebooks, and the benchmark) can write or inspect them.
The models learn from the bundled, annotated corpus (and the editor's corrections) and are then
applied to whatever folder is analysed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import cluster as cluster_stage
from . import factors as factor_stage
from . import themes as theme_stage
from .corpus import load_annotations
from .draft import Period, build_draft, match_previous
from .ingest import IngestResult, ingest, select_period
from .settings import Settings


@dataclass
class RunResult:
    settings: Settings
    ingest: IngestResult
    stories: pd.DataFrame  # the stories of the period analysed
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


def load_training(settings: Settings, nlp, target: IngestResult | None = None, target_sentences=None) -> Training:
    """The annotated bundled corpus, parsed (from the cache when possible)."""
    from .nlp import parse_stories

    bundled = Settings().corpus_dir
    same = target is not None and Path(settings.corpus_dir).resolve() == bundled.resolve()
    corpus_settings = settings.replace(corpus_dir=bundled, progress=False)
    stories = target.stories if same else ingest(corpus_settings, echo=None).stories
    labels, gold = load_annotations(corpus_settings)
    stories = stories[stories["story_id"].isin(labels["story_id"])].reset_index(drop=True)
    if same and target_sentences is not None:
        sentences = target_sentences[target_sentences["story_id"].isin(set(stories["story_id"]))].reset_index(drop=True)
    else:
        sentences = parse_stories(stories, corpus_settings, nlp)
    return Training(stories, sentences, labels, gold)


STAGES = ("ingest", "parse", "themes", "factors", "cluster", "draft")


def analyze(settings: Settings, echo=print, period: Period | None = None, editor=None, until: str = "draft",
            on_stage=None) -> RunResult:
    """Run the stages over settings.corpus_dir for the period (settings.since/until), up to and
    including `until` (one of STAGES); tables of later stages are returned empty.

    `editor` is an optional `review.EditorInput` (verdicts and theme corrections); by default the
    editor's sheet at settings.review_file is read (before anything is written). `on_stage(name)`
    is called as each stage starts (the benchmark uses it to attribute memory to stages).
    """
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
        sentences = parse_stories(stories, settings, get_nlp)
        all_in_target = len(stories) == len(result.stories)
        training = load_training(settings, get_nlp, result, sentences if all_in_target else None)
    if "load_model" in timings:
        timings["parse"] -= timings["load_model"]
    if until == "parse":
        empty.sentences = sentences
        return empty

    # --- themes ---------------------------------------------------------------------------
    labels = _apply_theme_corrections(training.labels, editor.themes)
    with timed("themes"):
        docs = theme_stage.story_documents(stories, sentences)
        train_docs = theme_stage.story_documents(training.stories, training.sentences)
        # editor's corrections of stories outside the bundled corpus become training labels too
        extra = labels[~labels["story_id"].isin(train_docs["story_id"]) & labels["story_id"].isin(docs["story_id"])]
        train_docs = pd.concat([train_docs, docs[docs["story_id"].isin(extra["story_id"])]], ignore_index=True)
        clf = theme_stage.train(train_docs, labels[labels["story_id"].isin(train_docs["story_id"])], settings)
        editor_labels = labels[labels["story_id"].isin(set(stories["story_id"]))][["story_id", "themes"]]
        themes = theme_stage.classify(docs, clf, editor_labels)
    if until == "themes":
        empty.sentences, empty.themes = sentences, themes
        return empty

    # --- factors ----------------------------------------------------------------------------
    with timed("factors"):
        model = factor_stage.train(training.stories, training.sentences, training.gold_factors, settings)
        factors = factor_stage.extract(stories, sentences, model, None, themes)
    if until == "factors":
        empty.sentences, empty.themes, empty.factors = sentences, themes, factors
        return empty

    # --- clusters and the draft --------------------------------------------------------------
    with timed("cluster"):
        clustered = cluster_stage.cluster_factors(factors, stories, threshold=settings.cluster_threshold)
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
            prev_sentences = parse_stories(prev_stories, settings, get_nlp)
            prev_docs = theme_stage.story_documents(prev_stories, prev_sentences)
            prev_themes = theme_stage.classify(prev_docs, clf, editor_labels[["story_id", "themes"]])
            prev_factors = factor_stage.extract(prev_stories, prev_sentences, model, None, prev_themes)
            prev = cluster_stage.cluster_factors(prev_factors, prev_stories, threshold=settings.cluster_threshold)
            previous, fading = match_previous(clusters, members, prev.clusters, prev.members, cluster_similarity)
            notes.append(f"trends: compared with {prev_period.since} t/m {prev_period.until} ({len(prev_stories)} stories)")
    with timed("draft"):
        draft = build_draft(clusters, members, stories, themes, period=period, previous=previous,
                            top_n=settings.top_n, fading=fading)
    return RunResult(settings, result, stories, sentences, themes, factors, clusters, members, draft, timings, notes,
                     editor)


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


def write_outputs(run: RunResult, out_dir: Path) -> list[Path]:
    """Write every table and the draft in all formats to out_dir (atomically, file by file)."""
    from .outputs import write_bytes, write_csv, write_parquet, write_text
    from .render.docx_out import render_docx
    from .render.html import render_html
    from .render.json_out import render_json
    from .render.markdown import render_markdown

    out = Path(out_dir)
    from .review import review_tables, write_review

    written = [write_parquet(out / "stories.parquet", run.stories),
               write_csv(out / "ingest-report.csv", run.ingest.report)]
    if len(run.sentences):
        written.append(write_parquet(out / "sentences.parquet", run.sentences))
    if len(run.themes):
        written.append(write_csv(out / "themes.csv", run.themes))
    if len(run.factors.columns):
        written += [write_csv(out / "factors.csv", run.factors), write_parquet(out / "factors.parquet", run.factors)]
    if len(run.clusters.columns):
        written += [write_csv(out / "clusters.csv", run.clusters), write_csv(out / "cluster-members.csv", run.members)]
        written += write_review(review_tables(run.clusters, run.members, run.stories, run.themes, run.editor), out)
    if run.draft:
        written += [write_text(out / "draft.json", render_json(run.draft)),
                    write_text(out / "rode-draad.md", render_markdown(run.draft)),
                    write_text(out / "rode-draad.html", render_html(run.draft)),
                    write_bytes(out / "rode-draad.docx", render_docx(run.draft))]
    written.append(write_text(out / "run-summary.txt", summary(run) + "\n"))
    return written


def summary(run: RunResult) -> str:
    """The run summary printed at the end of `analyze`."""
    lines = [run.ingest.summary(), f"stories analysed: {len(run.stories)}"
             + (f"; sentences: {len(run.sentences)}" if len(run.sentences) else "")]
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
