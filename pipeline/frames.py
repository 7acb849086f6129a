"""Fast row access to pandas tables.

pandas 3 stores text as Arrow-backed strings; iterating such a column element by element (as
`itertuples`, `to_dict("records")` and `zip(df[a], df[b])` do) converts every value separately
and is slow on 100,000s of rows. These helpers take whole columns with `tolist()` first.
"""
from __future__ import annotations

from collections import namedtuple

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
