"""Benchmark: the whole pipeline over the bundled corpus and over larger corpora built from it.

    python benchmarks/bench.py                 # corpus, 1,000 and 10,000 stories -> docs/bench.md
    python benchmarks/bench.py --sizes 1000    # other sizes
    python benchmarks/bench.py --smoke         # 40 stories, no report file (used by the tests)

Synthetic corpora are made from the bundled stories by recombining paragraphs of different
stories, with new ids, dates (2017-2025) and regions; no two synthetic stories are copies. For each
corpus the report gives, per stage: seconds, stories per second, words per second and peak memory
(resident set size of the process, sampled every 50 ms); the share of the time spent parsing; and
the time of a re-run after adding one story to the analysed corpus (parse cache and trained
models warm, as for an editor who adds a story).
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.gazetteer import load_gazetteer  # noqa: E402
from pipeline.ingest import split_front_matter  # noqa: E402
from pipeline.run import analyze, write_outputs  # noqa: E402
from pipeline.settings import Settings  # noqa: E402


class MemorySampler:
    """Samples the process RSS in a thread; attributes the peak to the current stage."""

    def __init__(self, interval: float = 0.05):
        self.proc = psutil.Process()
        self.interval = interval
        self.stage = "start"
        self.peaks: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> float:
        total = self.proc.memory_info().rss
        for child in self.proc.children(recursive=True):  # spaCy worker processes
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total / 2**20

    def _run(self):
        while not self._stop.is_set():
            rss = self._rss()
            self.peaks[self.stage] = max(self.peaks.get(self.stage, 0.0), rss)
            time.sleep(self.interval)

    def set_stage(self, name: str):
        self.stage = name

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def synthetic_corpus(n: int, folder: Path, seed: int = 7) -> int:
    """Write n recombined stories to folder; returns their total number of words."""
    rng = np.random.default_rng(seed)
    sources = []
    for p in sorted((ROOT / "corpus" / "stories").glob("*.md")):
        meta, body, _ = split_front_matter(p.read_text(encoding="utf-8"))
        paragraphs = [b for b in body.split("\n\n") if b.strip()]
        if len(paragraphs) >= 3:
            sources.append((meta, paragraphs))
    regions = list(load_gazetteer(Settings().regions_file).regions)
    start = date(2017, 1, 1)
    folder.mkdir(parents=True, exist_ok=True)
    words = 0
    for i in range(n):
        meta, paragraphs = sources[rng.integers(len(sources))]
        body = [paragraphs[0]]
        for _ in range(int(rng.integers(4, 9))):
            _, other = sources[rng.integers(len(sources))]
            body.append(other[int(rng.integers(1, len(other)))])
        text = "\n\n".join(body)
        words += len(text.split())
        day = start + timedelta(days=int(rng.integers(0, 9 * 365)))
        title = str(meta.get("title", "Verhaal")).replace('"', "'")
        (folder / f"bench-{i:05d}.md").write_text(
            f"---\nid: bench-{i:05d}\ntitle: \"{title} ({i})\"\ndate: {day.isoformat()}\n"
            f"region: {regions[int(rng.integers(len(regions)))]}\n---\n\n{text}\n", encoding="utf-8")
    return words


def run_once(settings: Settings, label: str) -> dict:
    with MemorySampler() as mem:
        t0 = time.monotonic()
        run = analyze(settings, echo=None, on_stage=mem.set_stage)
        mem.set_stage("write")
        t_write = time.monotonic()
        write_outputs(run, settings.out_dir)
        end = time.monotonic()
    timings = dict(run.timings)
    timings["write"] = end - t_write
    n_stories = len(run.stories)
    n_words = int(run.stories["n_words"].sum())
    return {"label": label, "stories": n_stories, "words": n_words, "total": end - t0, "timings": timings,
            "peaks": mem.peaks, "peak": max(mem.peaks.values())}


def rerun_after_one_story(settings: Settings, folder: Path, n_before: int, repeats: int = 3) -> dict:
    """Add one new story (recombined like the others, from another seed, so not a near-duplicate
    that ingestion would skip) and time `analyze` plus writing the outputs; `repeats` times, each
    with another new story. The median run is reported (with every total): a single timing of a
    few seconds on a shared 2-core machine varies by about 1.5 s from run to run."""
    runs = []
    for k in range(repeats):
        extra = folder.parent / (folder.name + "-extra")
        synthetic_corpus(1, extra, seed=99991 + k)
        text = (extra / "bench-00000.md").read_text(encoding="utf-8").replace("id: bench-00000", f"id: bench-extra-{k}")
        (folder / f"bench-extra-{k}.md").write_text(text, encoding="utf-8")
        shutil.rmtree(extra, ignore_errors=True)
        t0 = time.monotonic()
        run = analyze(settings, echo=None)
        t_write = time.monotonic()
        write_outputs(run, settings.out_dir)
        end = time.monotonic()
        if len(run.stories) != n_before + k + 1:
            raise RuntimeError(f"re-run analysed {len(run.stories)} stories, expected {n_before + k + 1}")
        runs.append({"total": end - t0, "timings": {**run.timings, "write": end - t_write}})
        del run
        gc.collect()
    median = sorted(runs, key=lambda r: r["total"])[len(runs) // 2]
    return {**median, "all": [r["total"] for r in runs]}


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import sklearn
    import spacy

    return (f"{cpu}, {psutil.cpu_count(logical=True)} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM; "
            f"{platform.system()} {platform.release()}; Python {platform.python_version()}, spaCy {spacy.__version__}, "
            f"scikit-learn {sklearn.__version__}")


def peak_text(peaks: dict, stage: str) -> str:
    """The stage's peak memory, or "-" when the stage was too short to be sampled (under 50 ms)."""
    return f"{peaks[stage]:.0f}" if stage in peaks else "-"


def report(results: list[dict], reruns: dict, settings: Settings) -> str:
    lines = ["# Benchmark", "", "Generated by `make bench` (`python benchmarks/bench.py`); do not edit by hand.", "",
             f"- Machine: {machine()}", f"- spaCy pipeline: {settings.spacy_model}, "
             f"batch size {settings.nlp_batch_size}, processes {settings.nlp_processes}",
             "- Synthetic corpora: paragraphs of the bundled stories recombined into new stories with new ids, "
             "dates and regions.", "- Each run starts with an empty cache (parse, models, memos); the re-run adds "
             "one new story to the analysed corpus and runs `analyze` and writes every output again, in the same "
             "process (warm cache: only the new story is parsed, classified and extracted; its phrases are "
             "added to the clusters of the first run). This is done three times, each time with another new "
             "story; the table gives the median run (and each run's total), the per-stage tables the median run.",
             "- `parse` includes reading (or parsing) the bundled corpus the models learn from. `train` is training "
             "(or, when cached, loading) the theme, factor and known-factor models on the bundled corpus: a fixed cost "
             "whatever the size of the analysed folder, shown in its own column and not counted in 'after parsing' "
             "(it is counted in the total).",
             "",
             "## Totals", "", "| corpus | stories | words | total s | parse s | parse share | train s | after parsing s | "
             "after/parse | peak memory MB | re-run +1 story s, median (each run) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        parse = r["timings"].get("parse", 0.0)
        train = r["timings"].get("train", 0.0)
        after = sum(v for k, v in r["timings"].items() if k not in ("parse", "ingest", "load_model", "train"))
        runs = reruns.get(r["label"])
        rerun = f"{runs['total']:.1f} ({', '.join(f'{x:.1f}' for x in runs['all'])})" if runs else "-"
        lines.append(f"| {r['label']} | {r['stories']} | {r['words']} | {r['total']:.1f} | {parse:.1f} | "
                     f"{parse / r['total']:.0%} | {train:.1f} | {after:.1f} | {after / parse if parse else 0:.2f} | "
                     f"{r['peak']:.0f} | {rerun} |")
    lines += ["", "Targets (issue 9): 10,000 stories in under 15 minutes, peak memory under 4 GB, a one-story re-run "
              "under 10 s, everything after parsing at most half of the parse time.", ""]
    for r in results:
        rerun = reruns.get(r["label"], {}).get("timings", {})
        lines += [f"## {r['label']}: per stage", "", "| stage | seconds | stories/s | words/s | peak MB | "
                  "re-run +1 story s (median run) |", "|---|---:|---:|---:|---:|---:|"]
        for stage, sec in r["timings"].items():
            again = f"{rerun[stage]:.1f}" if stage in rerun else "-"
            lines.append(f"| {stage} | {sec:.1f} | {r['stories'] / sec if sec else 0:.0f} | "
                         f"{r['words'] / sec if sec else 0:.0f} | {peak_text(r['peaks'], stage)} | {again} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000", help="synthetic corpus sizes, comma-separated")
    parser.add_argument("--smoke", action="store_true",
                        help="a 40-story run and one re-run, report printed, not written (for the tests)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "bench.md"))
    parser.add_argument("--processes", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="rd-bench-"))
    try:
        base = Settings().replace(progress=False, nlp_processes=args.processes, review_file=work / "none.xlsx")
        sizes = [40] if args.smoke else [int(x) for x in args.sizes.split(",") if x]
        results, reruns = [], {}
        corpora = [] if args.smoke else [("corpus", ROOT / "corpus" / "stories")]
        for n in sizes:
            folder = work / f"stories-{n}"
            synthetic_corpus(n, folder)
            corpora.append((f"{n} stories", folder))
        for label, folder in corpora:
            run_folder = work / f"in-{label.replace(' ', '-')}"
            shutil.copytree(folder, run_folder)
            s = base.replace(corpus_dir=run_folder, out_dir=work / f"out-{label.replace(' ', '-')}",
                             cache_dir=work / f"cache-{label.replace(' ', '-')}")
            print(f"bench: {label} ...", flush=True)
            r = run_once(s, label)
            results.append(r)
            print(f"bench: {label}: {r['total']:.1f}s, peak {r['peak']:.0f} MB, {r['timings']}", flush=True)
            reruns[label] = rerun_after_one_story(s, run_folder, r["stories"], repeats=1 if args.smoke else 3)
            print(f"bench: {label}: re-run after one new story {reruns[label]['total']:.1f}s "
                  f"{reruns[label]['timings']}", flush=True)
        text = report(results, reruns, base)
        if args.smoke:
            print(text)
        else:
            from pipeline.outputs import write_text

            write_text(Path(args.out), text)
            print(f"wrote {args.out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
