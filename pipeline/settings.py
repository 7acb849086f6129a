"""Every path, threshold and default of Rode Draad in one place.

`Settings` is an immutable dataclass. Defaults live here; the command line (and the Makefile
variables CORPUS, OUT, SINCE, UNTIL) override them through `Settings.replace(...)`, and a few
environment variables (`RD_*`, see `from_env`) override them for a whole shell session.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class Settings:
    # --- paths -------------------------------------------------------------------------
    corpus_dir: Path = ROOT / "corpus" / "stories"
    annotations_dir: Path = ROOT / "corpus" / "annotations"
    # an independent second annotation of the same stories (docs/annotation.md, "Agreement")
    second_annotation_dir: Path = ROOT / "corpus" / "second-annotation"
    reference_file: Path = ROOT / "corpus" / "reference" / "lessons-learned-2022.yaml"
    out_dir: Path = ROOT / "build"
    models_dir: Path = ROOT / "models"
    regions_file: Path = DATA_DIR / "regions.yaml"
    review_file: Path = ROOT / "corpus" / "review" / "review.xlsx"  # the editor's sheet; only read
    cache_dir: Path = ROOT / ".cache"  # parsed stories (by content hash) and trained models (by fingerprint)

    # --- period of stories analysed (inclusive); None = open ------------------------------
    since: date | None = None
    until: date | None = None

    # --- ingestion -------------------------------------------------------------------------
    max_file_bytes: int = 2_000_000  # a larger file is skipped with a message
    min_words: int = 20  # fewer words: kept, with a warning ("very short")
    near_duplicate_threshold: float = 0.85  # Jaccard similarity of word 5-gram shingles
    min_dutch_share: float = 0.5  # share of function words that are Dutch; below: not Dutch
    mixed_language_share: float = 0.8  # below this (but Dutch): kept, warned as mixed language

    # --- NLP -------------------------------------------------------------------------------
    # "bundled" = models/nl_rode_draad; "nl_core_news_sm" = the installed spaCy package;
    # anything else is taken as a path to a spaCy pipeline directory.
    spacy_model: str = "bundled"
    nlp_batch_size: int = 32
    nlp_processes: int = 1

    # --- clustering and the draft -------------------------------------------------------------
    cluster_threshold: float = 0.6  # cosine distance below which phrases may share a cluster
    top_n: int = 5  # factors and bottlenecks listed per theme in the draft
    review_top: int = 150  # clusters per theme and polarity on the review sheet (all are in clusters.csv)
    # a re-run that adds a few stories assigns their phrases to the clusters of the previous run
    # (kept in the cache); False (`--recluster`) clusters every group from scratch
    incremental_clusters: bool = True
    # cluster with the scores of the model that recognises published 2022 factors (references.py);
    # docs/evaluation.md shows the clustering with and without them
    known_factor_hints: bool = True

    # --- misc ------------------------------------------------------------------------------
    progress: bool = True
    seed: int = 20221

    def replace(self, **changes) -> "Settings":
        """A copy with the given fields changed; None values are ignored."""
        changes = {k: v for k, v in changes.items() if v is not None}
        for key in ("corpus_dir", "annotations_dir", "second_annotation_dir", "out_dir", "reference_file", "models_dir", "review_file", "cache_dir"):
            if key in changes:
                changes[key] = Path(changes[key])
        return dataclasses.replace(self, **changes)

    @property
    def bundled_model_dir(self) -> Path:
        return self.models_dir / "nl_rode_draad"

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "Settings":
        """Defaults, overridden by RD_CORPUS, RD_OUT, RD_SINCE, RD_UNTIL, RD_SPACY_MODEL, RD_REVIEW."""
        env = os.environ if environ is None else environ
        s = cls()
        return s.replace(
            corpus_dir=env.get("RD_CORPUS") or None,
            out_dir=env.get("RD_OUT") or None,
            since=parse_bound(env.get("RD_SINCE"), start=True),
            until=parse_bound(env.get("RD_UNTIL"), start=False),
            spacy_model=env.get("RD_SPACY_MODEL") or None,
            review_file=env.get("RD_REVIEW") or None,
        )


def parse_bound(text: str | None, *, start: bool) -> date | None:
    """Parse a period bound: '2024', '2024-03' or '2024-03-15'.

    A year or month is widened to its first day (start=True) or last day (start=False).
    """
    if text is None or str(text).strip() == "":
        return None
    text = str(text).strip()
    parts = text.split("-")
    try:
        if len(parts) == 1:
            y = int(parts[0])
            return date(y, 1, 1) if start else date(y, 12, 31)
        if len(parts) == 2:
            y, m = int(parts[0]), int(parts[1])
            if start:
                return date(y, m, 1)
            nxt = date(y + (m == 12), m % 12 + 1, 1)
            return date.fromordinal(nxt.toordinal() - 1)
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"cannot read period bound {text!r}: use YYYY, YYYY-MM or YYYY-MM-DD") from exc


POLARITIES = ("succes", "knelpunt")


@dataclass(frozen=True)
class Theme:
    """One theme of data/themes.yaml."""

    key: str
    name: str
    description: str
    seeds: tuple[str, ...]


def read_yaml(path: Path):
    """A YAML data file, parsed with libyaml's safe loader when available (several times faster
    than the pure-Python one, which is the fallback)."""
    import yaml

    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def load_themes(path: Path | None = None) -> tuple[Theme, ...]:
    """The configured themes, in file order (data/themes.yaml)."""
    data = read_yaml(path or DATA_DIR / "themes.yaml")
    return tuple(Theme(t["key"], t["name"], " ".join(str(t.get("description", "")).split()),
                       tuple(t.get("seeds", []))) for t in data["themes"])
