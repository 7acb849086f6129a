"""Executing the research notebooks headless (`make notebooks`, and the tests).

The notebooks in notebooks/ are stored without outputs; executed copies go to
<out>/notebooks/. They read the outputs of a run in RD_BUILD (default: build/).
"""
from __future__ import annotations

import os
from pathlib import Path

from .settings import ROOT


def execute_notebooks(build_dir: Path, out_dir: Path, names: list[str] | None = None, timeout: int = 900,
                      env: dict | None = None) -> list[Path]:
    """Run every notebook top to bottom; raises on the first cell that fails."""
    import nbformat
    from nbclient import NotebookClient

    folder = ROOT / "notebooks"
    paths = sorted(folder.glob("*.ipynb"))
    if names:
        paths = [p for p in paths if p.stem in names]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    old = dict(os.environ)
    os.environ["RD_BUILD"] = str(Path(build_dir).resolve())
    os.environ["MPLBACKEND"] = "Agg"
    os.environ.update(env or {})
    written = []
    try:
        for path in paths:
            nb = nbformat.read(path, as_version=4)
            NotebookClient(nb, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(folder)}}).execute()
            target = out_dir / path.name
            nbformat.write(nb, target)
            written.append(target)
    finally:
        os.environ.clear()
        os.environ.update(old)
    return written
