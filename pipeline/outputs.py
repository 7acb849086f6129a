"""Writing outputs safely: every file is written to a temporary file and renamed into place,
so a crash or Ctrl-C never leaves a half-written report behind."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success it replaces `path` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path: Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_csv(path: Path, df: pd.DataFrame) -> Path:
    """UTF-8 CSV with a header, quoted only where needed; dates as YYYY-MM-DD. Written with
    pyarrow's CSV writer (much faster than pandas on large tables), with pandas as fallback
    for columns arrow cannot type (mixed objects)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    out = df.copy()
    out.attrs = {}  # run metadata (e.g. placed verdicts) is not part of the file
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].dt.strftime("%Y-%m-%d")
        elif pd.api.types.is_bool_dtype(out[col]):
            out[col] = out[col].map({True: "True", False: "False"})
    with atomic_path(path) as tmp:
        try:
            table = pa.Table.from_pandas(out, preserve_index=False)
            pacsv.write_csv(table, tmp, pacsv.WriteOptions(quoting_style="needed"))
        except (pa.ArrowException, TypeError, ValueError):
            out.to_csv(tmp, index=False, encoding="utf-8")
    return Path(path)


def write_parquet(path: Path, df: pd.DataFrame) -> Path:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return Path(path)
