"""Fast row access to pandas tables.

pandas 3 stores text as Arrow-backed strings; iterating such a column element by element (as
`itertuples`, `to_dict("records")` and `zip(df[a], df[b])` do) converts every value separately
and is slow on 100,000s of rows. These helpers take whole columns with `tolist()` first.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np
import pandas as pd


def tuples(df: pd.DataFrame, columns: list[str] | None = None) -> list[tuple]:
    """The rows of `df` (restricted to `columns`) as plain tuples."""
    columns = list(df.columns) if columns is None else columns
    return list(zip(*(df[c].tolist() for c in columns))) if len(df) else []


def records(df: pd.DataFrame, columns: list[str] | None = None) -> list[dict]:
    """The rows of `df` (restricted to `columns`) as dicts, like `to_dict("records")`."""
    columns = list(df.columns) if columns is None else columns
    return [dict(zip(columns, row)) for row in tuples(df, columns)]


def named(df: pd.DataFrame, name: str = "Row") -> list:
    """The rows of `df` as named tuples, like `itertuples(index=False)`."""
    row = namedtuple(name, list(df.columns), rename=True)
    return [row._make(t) for t in tuples(df)]


def isin(column: pd.Series, values) -> np.ndarray:
    """`column.isin(values)` as a boolean array. pandas' own `isin` converts every value of an
    Arrow-backed string column one by one (~30x slower on 10,000s of rows); this looks each
    value up in a Python set."""
    if isinstance(values, pd.Series):
        values = values.tolist()
    values = values if isinstance(values, (set, frozenset, dict)) else set(values)
    return np.fromiter((v in values for v in column.tolist()), dtype=bool, count=len(column))


def in_story_order(df: pd.DataFrame, story_ids, within: str | None = None) -> pd.DataFrame:
    """`df` with its rows grouped in the order of `story_ids` (stable, or by `within` inside a
    story); rows of stories not listed are dropped."""
    rank = df["story_id"].map({sid: i for i, sid in enumerate(story_ids)})
    df = df[rank.notna()]
    rank = rank[rank.notna()].to_numpy()
    order = np.lexsort((df[within].to_numpy(), rank)) if within else rank.argsort(kind="stable")
    return df.iloc[order].reset_index(drop=True)
