"""A small progress reporter for long runs (stderr; quiet when disabled)."""
from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], label: str, *, enabled: bool = True, total: int | None = None,
             every_seconds: float = 2.0, stream=None) -> Iterator[T]:
    """Yield from `items`, printing 'label: done/total (rate/s)' at most every few seconds.

    Short runs (finished before the first interval) print nothing.
    """
    stream = stream or sys.stderr
    if total is None:
        try:
            total = len(items)  # type: ignore[arg-type]
        except TypeError:
            total = None
    start = last = time.monotonic()
    done = 0
    printed = False
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if enabled and now - last >= every_seconds:
            rate = done / (now - start)
            of = f"/{total}" if total else ""
            stream.write(f"  {label}: {done}{of} ({rate:.1f}/s)\n")
            stream.flush()
            last, printed = now, True
    if enabled and printed:
        stream.write(f"  {label}: {done} done in {time.monotonic() - start:.1f}s\n")
        stream.flush()
