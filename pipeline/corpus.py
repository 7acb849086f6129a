"""The bundled corpus: gold annotations, the 2022 reference lists, the validator and statistics.

Annotations live in `corpus/annotations/<story id>.yaml`, separate from the stories:

    id: <story id>
    themes: [<main theme key>, <other theme key>, ...]   # may be empty
    form: reportage | interview | nieuws | kopjes | opsomming
    origin: publicatie | nieuw
    factors:
      - polarity: succes | knelpunt
        evidence: "<exact substring of the story body>"
        phrase: "<short Dutch phrase, 3-10 words>"
        reference: <theme>.<S|K><n> | null
        annotator: second                # optional: added from the second annotation after
                                         # adjudication (absent = the first annotator's)

`corpus/second-annotation/<story id>.yaml` holds an independent second annotation of the same
stories (themes and factors, no references, no form/origin), made from the text and the guide
alone. `make evaluate` reports the agreement between the two annotators.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from .ingest import count_words, normalise_text, split_front_matter
from .settings import POLARITIES, Settings, load_themes, read_yaml

ANNOTATORS = ("first", "second")
FORMS = ("reportage", "interview", "nieuws", "kopjes", "opsomming")
ORIGINS = ("publicatie", "nieuw")


@dataclass(frozen=True)
class Reference:
    """One published factor of the 2022 analysis."""

    ref_id: str  # e.g. "praktijkleren.S3"
    theme: str
    polarity: str  # succes | knelpunt
    phrase: str


def load_reference(path: Path) -> list[Reference]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    refs = []
    for theme in data["themes"]:
        for polarity in POLARITIES:
            for code, phrase in (theme.get(polarity) or {}).items():
                refs.append(Reference(f"{theme['key']}.{code}", theme["key"], polarity, str(phrase)))
    return refs


FACTOR_FIELDS = ["story_id", "factor_index", "polarity", "evidence", "phrase", "reference", "annotator"]


def load_annotations(settings: Settings, directory: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Gold labels as two tables (from `settings.annotations_dir`, or `directory`, e.g. the
    second annotation).

    labels:  story_id, themes (list, main first), main_theme, form, origin
    factors: story_id, factor_index, polarity, evidence, phrase, reference, annotator
    """
    label_rows, factor_rows = [], []
    for path in sorted(Path(directory or settings.annotations_dir).glob("*.yaml")):
        ann = read_yaml(path) or {}
        sid = str(ann.get("id") or path.stem)
        themes = list(ann.get("themes") or [])
        label_rows.append({"story_id": sid, "themes": themes, "main_theme": themes[0] if themes else "",
                           "form": ann.get("form", ""), "origin": ann.get("origin", "")})
        for i, f in enumerate(ann.get("factors") or []):
            factor_rows.append({"story_id": sid, "factor_index": i, "polarity": f.get("polarity"),
                                "evidence": f.get("evidence", ""), "phrase": f.get("phrase", ""),
                                "reference": f.get("reference") or None,
                                "annotator": f.get("annotator") or "first"})
    labels = pd.DataFrame(label_rows, columns=["story_id", "themes", "main_theme", "form", "origin"])
    factors = pd.DataFrame(factor_rows, columns=FACTOR_FIELDS)
    return labels, factors


def locate(text: str, evidence: str) -> tuple[int, int] | None:
    """Character offsets of `evidence` in an ingested story text (normalised the same way)."""
    needle = normalise_text(evidence)
    start = text.find(needle)
    if start < 0:
        return None
    return start, start + len(needle)


def check(settings: Settings) -> list[str]:
    """Validate the corpus; returns a list of problems (empty = valid).

    Checks: every story has an annotation and vice versa; ids match file names; front matter has
    id/title/date/region; theme keys, forms, origins, polarities and reference ids are valid;
    every evidence string occurs in its story body (raw and as ingested); phrases are 3-10 words.
    """
    from .gazetteer import load_gazetteer

    problems: list[str] = []
    theme_keys = {t.key for t in load_themes()}
    ref_ids = {r.ref_id for r in load_reference(settings.reference_file)}
    gaz = load_gazetteer(settings.regions_file)
    stories = {p.stem: p for p in sorted(Path(settings.corpus_dir).glob("*.md"))}
    annotations = {p.stem: p for p in sorted(Path(settings.annotations_dir).glob("*.yaml"))}
    for sid in sorted(set(stories) - set(annotations)):
        problems.append(f"{stories[sid]}: story has no annotation file {sid}.yaml")
    for sid in sorted(set(annotations) - set(stories)):
        problems.append(f"{annotations[sid]}: annotation has no story {sid}.md")
    for sid in sorted(set(stories) & set(annotations)):
        spath, apath = stories[sid], annotations[sid]
        meta, body, fm_problem = split_front_matter(spath.read_text(encoding="utf-8"))
        if fm_problem:
            problems.append(f"{spath}: {fm_problem}")
        for key in ("id", "title", "date", "region"):
            if not meta.get(key):
                problems.append(f"{spath}: front matter lacks '{key}'")
        if meta.get("id") and str(meta["id"]) != sid:
            problems.append(f"{spath}: front matter id {meta['id']!r} differs from file name")
        if meta.get("region") and gaz.normalise_region(str(meta["region"])) is None:
            problems.append(f"{spath}: region {meta['region']!r} is not an arbeidsmarktregio")
        try:
            ann = yaml.safe_load(apath.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            problems.append(f"{apath}: not valid YAML ({exc})")
            continue
        if str(ann.get("id", sid)) != sid:
            problems.append(f"{apath}: id {ann.get('id')!r} differs from file name")
        themes = ann.get("themes")
        if not isinstance(themes, list):
            problems.append(f"{apath}: 'themes' must be a list (may be empty)")
            themes = []
        for t in themes:
            if t not in theme_keys:
                problems.append(f"{apath}: unknown theme key {t!r}")
        if len(set(themes)) != len(themes):
            problems.append(f"{apath}: a theme is listed twice")
        if ann.get("form") not in FORMS:
            problems.append(f"{apath}: form {ann.get('form')!r} not one of {', '.join(FORMS)}")
        if ann.get("origin") not in ORIGINS:
            problems.append(f"{apath}: origin {ann.get('origin')!r} not one of {', '.join(ORIGINS)}")
        problems += _check_factors(apath, ann, body, ref_ids)
    problems += _check_second_annotation(settings, stories, theme_keys)
    return problems


def _check_factors(apath: Path, ann: dict, body: str, ref_ids: set[str] | None) -> list[str]:
    """Problems of one annotation file's factors; `ref_ids` None: references are not expected
    (the second annotation)."""
    problems = []
    ingested = normalise_text(body)
    for i, f in enumerate(ann.get("factors") or [], start=1):
        where = f"{apath}: factor {i}"
        if not isinstance(f, dict):
            problems.append(f"{where}: not a mapping")
            continue
        if f.get("polarity") not in POLARITIES:
            problems.append(f"{where}: polarity {f.get('polarity')!r} not succes/knelpunt")
        ev = f.get("evidence")
        if not isinstance(ev, str) or not ev.strip():
            problems.append(f"{where}: evidence missing")
        elif ev not in body:
            problems.append(f"{where}: evidence not found in story: {ev[:70]!r}")
        elif locate(ingested, ev) is None:
            problems.append(f"{where}: evidence not found in the ingested text (spans a paragraph or markup?): {ev[:60]!r}")
        phrase = f.get("phrase")
        if not isinstance(phrase, str) or not 2 <= count_words(phrase) <= 12:
            problems.append(f"{where}: phrase must be a short phrase of 3-10 words: {phrase!r}")
        if f.get("annotator", "first") not in ANNOTATORS:
            problems.append(f"{where}: annotator {f.get('annotator')!r} not one of {', '.join(ANNOTATORS)}")
        ref = f.get("reference")
        if ref_ids is None:
            continue
        if ref is not None and ref not in ref_ids:
            problems.append(f"{where}: unknown reference id {ref!r}")
        elif ref is not None and f.get("polarity") in POLARITIES:
            kind = "S" if f["polarity"] == "succes" else "K"
            if ref.split(".")[1][0] != kind:
                problems.append(f"{where}: reference {ref} does not match polarity {f['polarity']}")
    return problems


def _check_second_annotation(settings: Settings, stories: dict[str, Path], theme_keys: set[str]) -> list[str]:
    """The second annotation (optional folder): each file names a bundled story, valid themes and
    factors whose evidence is in that story."""
    problems = []
    folder = Path(settings.second_annotation_dir)
    for apath in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        if apath.stem not in stories:
            problems.append(f"{apath}: second annotation has no story {apath.stem}.md")
            continue
        try:
            ann = yaml.safe_load(apath.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            problems.append(f"{apath}: not valid YAML ({exc})")
            continue
        themes = ann.get("themes")
        if not isinstance(themes, list) or any(t not in theme_keys for t in themes):
            problems.append(f"{apath}: 'themes' must be a list of theme keys, got {themes!r}")
        _, body, _ = split_front_matter(stories[apath.stem].read_text(encoding="utf-8"))
        problems += _check_factors(apath, ann, body, None)
    return problems


def statistics(settings: Settings) -> dict:
    """Counts behind docs/corpus.md."""
    labels, factors = load_annotations(settings)
    metas = []
    for p in sorted(Path(settings.corpus_dir).glob("*.md")):
        meta, body, _ = split_front_matter(p.read_text(encoding="utf-8"))
        metas.append({"story_id": p.stem, "region": str(meta.get("region", "")),
                      "year": str(meta.get("date", ""))[:4], "n_words": count_words(body)})
    meta_df = pd.DataFrame(metas)
    df = meta_df.merge(labels, on="story_id", how="left")
    refs = load_reference(settings.reference_file)
    ref_support = factors.dropna(subset=["reference"]).groupby("reference")["story_id"].nunique()
    return {
        "n_stories": len(df),
        "words": df["n_words"].describe().round(0).to_dict() if len(df) else {},
        "main_theme": Counter(df["main_theme"].fillna("")),
        "any_theme": Counter(t for ts in df["themes"].dropna() for t in ts),
        "multi_theme": int(sum(len(ts) >= 2 for ts in df["themes"].dropna())),
        "no_theme": int(sum(len(ts) == 0 for ts in df["themes"].dropna())),
        "region": Counter(df["region"]),
        "year": Counter(df["year"]),
        "form": Counter(df["form"].fillna("")),
        "origin": Counter(df["origin"].fillna("")),
        "factors": factors.merge(labels[["story_id", "main_theme"]], on="story_id")
                          .groupby(["main_theme", "polarity"]).size().unstack(fill_value=0),
        "reference_support": {r.ref_id: int(ref_support.get(r.ref_id, 0)) for r in refs},
        "references": refs,
        "n_factors": len(factors),
        "by_annotator": Counter(factors["annotator"]),
        "n_second_annotation": len(list(Path(settings.second_annotation_dir).glob("*.yaml"))),
    }


def render_statistics(stats: dict) -> str:
    """docs/corpus.md, generated by `python -m pipeline corpus stats`."""
    names = {t.key: t.name for t in load_themes()}

    def table(counter: Counter, header: str, order=None) -> list[str]:
        keys = order if order is not None else sorted(counter, key=lambda k: (-counter[k], k))
        out = [f"| {header} | stories |", "|---|---:|"]
        out += [f"| {k or '(none)'} | {counter.get(k, 0)} |" for k in keys]
        return out

    lines = ["# The bundled corpus", "",
             "Generated by `python -m pipeline corpus stats` (also run by `make corpus-stats`); do not edit by hand.", "",
             f"- Stories: **{stats['n_stories']}** (words per story: min {stats['words'].get('min', 0):.0f}, "
             f"median {stats['words'].get('50%', 0):.0f}, max {stats['words'].get('max', 0):.0f})",
             f"- Stories with two or more themes: **{stats['multi_theme']}**; with no theme: **{stats['no_theme']}**",
             f"- Regions covered: **{len([r for r in stats['region'] if r])}** of 35",
             f"- Origin: {', '.join(f'{k}: {v}' for k, v in sorted(stats['origin'].items()))}", "",
             "## Themes", "", "| theme | main theme | any theme |", "|---|---:|---:|"]
    for key, name in names.items():
        lines.append(f"| {name} (`{key}`) | {stats['main_theme'].get(key, 0)} | {stats['any_theme'].get(key, 0)} |")
    lines += ["", "## Years", ""] + table(stats["year"], "year", sorted(stats["year"]))
    lines += ["", "## Forms", ""] + table(stats["form"], "form")
    lines += ["", "## Regions", ""] + table(stats["region"], "arbeidsmarktregio")
    lines += ["", "## Annotated factors per main theme and polarity", "",
              f"{stats['n_factors']} gold factors: {stats['by_annotator'].get('first', 0)} from the first annotation, "
              f"{stats['by_annotator'].get('second', 0)} adopted from the second annotation after adjudication "
              f"(`annotator: second`; see docs/annotation.md). Stories with a second annotation: "
              f"{stats['n_second_annotation']}.", "",
              "| main theme | succes | knelpunt |", "|---|---:|---:|"]
    fac = stats["factors"]
    for key in names:
        if key in fac.index:
            lines.append(f"| {key} | {fac.loc[key].get('succes', 0)} | {fac.loc[key].get('knelpunt', 0)} |")
    if "" in fac.index:
        lines.append(f"| (no theme) | {fac.loc[''].get('succes', 0)} | {fac.loc[''].get('knelpunt', 0)} |")
    lines += ["", "## Reference factors (2022) and the number of stories expressing each", "",
              "| reference | published factor (paraphrase) | stories |", "|---|---|---:|"]
    for ref in stats["references"]:
        lines.append(f"| {ref.ref_id} | {ref.phrase} | {stats['reference_support'][ref.ref_id]} |")
    return "\n".join(lines) + "\n"
