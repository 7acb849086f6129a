"""Per-story memo of a stage's result rows, so a re-run only computes what is new.

A stage whose output rows for a story depend only on that story's content (its text, via
`content_hash`) and on a trained model (via the model's fingerprint) can keep those rows here:
one parquet file per stage and fingerprint under `<cache_dir>/results/`. On the next run the
rows of unchanged stories are taken from the memo (with the story's current id), and only new
or changed stories are computed. A changed model or configuration has another fingerprint and
so starts a fresh memo. The memo is only a cache: deleting `.cache/` is always safe.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from .frames import in_story_order, isin
from .outputs import write_parquet


def memo_path(cache_dir: Path, stage: str, fingerprint: str) -> Path:
    return Path(cache_dir) / "results" / f"{stage}-{fingerprint}.parquet"


def known_hashes(cache_dir: Path, stage: str, fingerprint: str) -> set[str]:
    """Content hashes of the stories in the stage's memo (only that column is read)."""
    import pyarrow.parquet as pq

    path = memo_path(cache_dir, stage, fingerprint)
    if not path.exists():
        return set()
    return set(pq.read_table(path, columns=["content_hash"]).column(0).to_pylist())


def memoized(stories: pd.DataFrame, compute: Callable[[pd.DataFrame], pd.DataFrame], cache_dir: Path, stage: str,
             fingerprint: str, keep: int = 4) -> pd.DataFrame:
    """The result rows of `compute(stories)` (a table with a `story_id` column), taking the rows of
    stories already computed under this fingerprint from the memo and computing the rest.

    Rows come back grouped in the order of `stories`. `keep` older memo files of the stage are
    kept; more are removed (they belong to models no longer in use).
    """
    path = memo_path(cache_dir, stage, fingerprint)
    folder = path.parent
    memo = pd.read_parquet(path) if path.exists() else None
    known = set(memo["content_hash"].tolist()) if memo is not None else set()
    is_known = isin(stories["content_hash"], known)
    todo = stories[~is_known]
    # nothing to compute: no call, unless there is no memo to take the table's columns from
    fresh = compute(todo) if len(todo) or memo is None else None
    parts = []
    if known:
        # the rows of known content, under the story's current id
        wanted = stories[is_known][["story_id", "content_hash"]]
        old = memo[~memo["_empty"]].drop(columns=["story_id", "_empty"])
        parts.append(wanted.merge(old, on="content_hash", how="inner").drop(columns="content_hash"))
    if fresh is not None:
        parts.append(fresh)
        # remember every story computed, also those without rows (as an `_empty` marker row)
        hash_of = dict(zip(todo["story_id"], todo["content_hash"]))
        add = fresh.assign(content_hash=fresh["story_id"].map(hash_of), _empty=False)
        none = todo[~isin(todo["story_id"], fresh["story_id"])]
        marker = pd.DataFrame({"story_id": none["story_id"], "content_hash": none["content_hash"], "_empty": True})
        frames = [f for f in (memo, add, marker) if f is not None and len(f)]
        if frames:
            write_parquet(path, pd.concat(frames, ignore_index=True))
        _prune(folder, stage, keep)
    columns = list(fresh.columns) if fresh is not None else [c for c in memo.columns
                                                             if c not in ("content_hash", "_empty")]
    result = pd.concat([p[columns] for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) \
        else pd.DataFrame(columns=columns)
    return in_story_order(result, stories["story_id"])


def _prune(folder: Path, stage: str, keep: int) -> None:
    files = sorted(folder.glob(f"{stage}-*.parquet"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[keep:]:
        old.unlink(missing_ok=True)
