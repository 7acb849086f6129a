"""End to end: the command line on a small folder of stories, the review loop across runs, periods,
and the research notebooks. Uses the bundled model; the bundled corpus is parsed once (cached)."""
from __future__ import annotations

import json
import shutil
import uuid

import openpyxl
import pandas as pd
import pytest

from pipeline.__main__ import main
from pipeline.settings import ROOT, Settings

SAMPLE = ["job-academie-rijnmond", "werk-pgb-zeeland", "pluspunt-twente-ontschot-werken",
          "orionis-werken-naar-vermogen", "wervingsproject-primark-rijnmond", "kandidaat-in-beeld-regio-zwolle"]
NEW_STORY = """---
id: nieuw-verhaal-ede
title: "Leerwerkplekken in de voedingsindustrie"
date: 2024-05-02
region: FoodValley
---
In Ede werken de gemeente, het werkgeversservicepunt en drie voedingsbedrijven samen aan leerwerkplekken
voor mensen met een afstand tot de arbeidsmarkt. Kandidaten lopen eerst twee weken mee en halen daarna
een praktijkverklaring op de werkvloer. Volgens de accountmanager werkt het omdat de werkgever zelf de
leerdoelen bepaalt. Lastig blijft dat de begeleiders op de werkvloer weinig tijd hebben, want de productie
gaat altijd voor.
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    stories = root / "verhalen"
    stories.mkdir()
    for sid in SAMPLE:
        shutil.copy(ROOT / "corpus" / "stories" / f"{sid}.md", stories)
    (stories / "nieuw-verhaal-ede.md").write_text(NEW_STORY, encoding="utf-8")
    (stories / "kapot.md").write_bytes(b"\x00\x01\x02 binair")
    return root


def run_cli(*args) -> int:
    return main([*args, "--quiet"])


@pytest.fixture(scope="module")
def first_run(workspace):
    out = workspace / "build"
    assert run_cli("analyze", "--corpus", str(workspace / "verhalen"), "--out", str(out),
                   "--review", str(workspace / "geen-review.xlsx")) == 0
    return out


def test_analyze_writes_every_output(first_run):
    for name in ("stories.parquet", "ingest-report.csv", "themes.csv", "factors.csv", "factors.parquet",
                 "clusters.csv", "cluster-members.csv", "draft.json", "rode-draad.md", "rode-draad.html",
                 "rode-draad.docx", "review.xlsx", "review-clusters.csv", "review-verhalen.csv", "run-summary.txt"):
        assert (first_run / name).exists(), name
    stories = pd.read_parquet(first_run / "stories.parquet")
    assert len(stories) == 7
    report = pd.read_csv(first_run / "ingest-report.csv")
    assert report[report.path.str.endswith("kapot.md")].problem.str.contains("binary").all()


def test_tables_have_the_documented_columns(first_run):
    from pipeline.settings import load_themes

    themes = pd.read_csv(first_run / "themes.csv", keep_default_na=False)
    keys = [t.key for t in load_themes()]
    assert list(themes.columns[:4]) == ["story_id", "main_theme", "themes", "flag"]
    assert {f"p_{k}" for k in keys} <= set(themes.columns)
    gold = themes.set_index("story_id").loc[SAMPLE]
    assert (gold.flag == "redacteur").all()  # annotated corpus stories keep their gold labels
    new = themes.set_index("story_id").loc["nieuw-verhaal-ede"]
    assert new.flag != "redacteur" and new.p_praktijkleren > 0
    factors = pd.read_csv(first_run / "factors.csv", keep_default_na=False)
    for col in ("story_id", "sentence_index", "start", "end", "polarity", "confidence", "sentence", "phrase", "themes"):
        assert col in factors.columns
    assert set(factors.polarity) <= {"succes", "knelpunt"}
    assert factors.phrase.str.split().str.len().max() <= 12
    texts = pd.read_parquet(first_run / "stories.parquet").set_index("story_id")["text"]
    for r in factors.head(30).itertuples():
        assert texts[r.story_id][r.start:r.end] == r.sentence  # offsets trace back to the story text


def test_draft_json_and_docx(first_run):
    import docx

    draft = json.loads((first_run / "draft.json").read_text(encoding="utf-8"))
    assert len(draft["themes"]) == 9 and draft["schema_version"] == 2
    item = next(i for t in draft["themes"] for i in t["items"])
    assert {"cluster_id", "polarity", "rank", "label", "keywords", "n_stories", "regions", "members"} <= set(item)
    member = item["members"][0]
    assert {"story_id", "sentence", "start", "end", "phrase"} <= set(member)
    assert draft["stories"][member["story_id"]]["title"]  # the member's story, by id
    document = docx.Document(first_run / "rode-draad.docx")
    assert any(p.style.name == "Heading 1" for p in document.paragraphs)


def test_review_loop_across_runs(workspace, first_run):
    """Reject a cluster, relabel one and correct a story's themes; add a story; run again."""
    review = workspace / "review" / "review.xlsx"
    review.parent.mkdir(exist_ok=True)
    shutil.copy(first_run / "review.xlsx", review)
    wb = openpyxl.load_workbook(review)
    ws = wb["clusters"]
    header = [c.value for c in ws[1]]
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    # two clusters that the new story cannot touch (their members come from corpus stories only)
    big = [i for i, r in enumerate(rows) if "nieuw-verhaal-ede" not in str(r[header.index("leden")])][:2]
    rejected_id = rows[big[0]][header.index("cluster_id")]
    ws.cell(row=big[0] + 2, column=header.index("oordeel") + 1, value="afwijzen")
    ws.cell(row=big[1] + 2, column=header.index("eigen_label") + 1, value="Label van de redactie")
    vs = wb["verhalen"]
    vheader = [c.value for c in vs[1]]
    for row in range(2, vs.max_row + 1):
        if vs.cell(row=row, column=1).value == "nieuw-verhaal-ede":
            vs.cell(row=row, column=vheader.index("themas_redactie") + 1, value="praktijkleren;werkgeversdienstverlening")
    wb.save(review)
    before = review.read_bytes(), review.stat().st_mtime_ns

    # a new story arrives
    extra = (workspace / "verhalen" / "nieuw-verhaal-ede.md").read_text(encoding="utf-8")
    (workspace / "verhalen" / "tweede-verhaal.md").write_text(
        extra.replace("nieuw-verhaal-ede", "tweede-verhaal").replace("Ede", "Wageningen")
             .replace("drie voedingsbedrijven", "een zuivelfabriek en twee bakkerijen"), encoding="utf-8")
    out = workspace / "build2"
    assert run_cli("analyze", "--corpus", str(workspace / "verhalen"), "--out", str(out), "--review", str(review)) == 0
    assert (review.read_bytes(), review.stat().st_mtime_ns) == before  # the editor's file is never written

    clusters = pd.read_csv(out / "review-clusters.csv", keep_default_na=False)
    summary = (out / "run-summary.txt").read_text(encoding="utf-8")
    draft = json.loads((out / "draft.json").read_text(encoding="utf-8"))
    labels = {i["label"] for t in draft["themes"] for i in t["items"]}
    ids = {i["cluster_id"] for t in draft["themes"] for i in t["items"]}
    assert rejected_id not in ids
    placed = clusters[clusters.oordeel == "afwijzen"]
    assert len(placed) == 1  # the verdict is carried into the new sheet
    assert "Label van de redactie" in labels
    assert "cannot be placed" not in summary
    themes = pd.read_csv(out / "themes.csv", keep_default_na=False).set_index("story_id")
    assert themes.loc["nieuw-verhaal-ede", "themes"] == "praktijkleren;werkgeversdienstverlening"
    assert themes.loc["nieuw-verhaal-ede", "flag"] == "redacteur"
    meta = json.loads(next((Settings().cache_dir / "models").glob("themes.json")).read_text(encoding="utf-8"))
    assert "nieuw-verhaal-ede" in meta["training_stories"]  # the correction became a training label


def test_unreadable_review_sheet_stops_before_writing(workspace, capsys):
    bad = workspace / "kapot.xlsx"
    bad.write_bytes(b"geen excel")
    out = workspace / "build-kapot"
    assert run_cli("analyze", "--corpus", str(workspace / "verhalen"), "--out", str(out), "--review", str(bad)) == 2
    assert "cannot be read" in capsys.readouterr().err
    assert not out.exists()


def test_period_run_goes_to_its_own_folder_with_trends(workspace):
    out = workspace / "build-periode"
    assert run_cli("analyze", "--out", str(out), "--period", "2022", "--review", str(workspace / "geen.xlsx")) == 0
    draft = json.loads((out / "2022" / "draft.json").read_text(encoding="utf-8"))
    assert draft["period"]["since"] == "2022-01-01" and draft["period"]["until"] == "2022-12-31"
    trends = {i["trend"] for t in draft["themes"] for i in t["items"]}
    assert trends & {"nieuw", "groeiend", "stabiel", "afnemend"}
    assert all(i["previous_n_stories"] is not None for t in draft["themes"] for i in t["items"])
    assert "vorige periode" in (out / "2022" / "rode-draad.md").read_text(encoding="utf-8")


def test_every_subcommand_has_help(capsys):
    for cmd in ("analyze", "ingest", "parse", "themes", "factors", "cluster", "draft", "evaluate", "notebooks", "corpus"):
        with pytest.raises(SystemExit) as exc:
            main([cmd, "--help"])
        assert exc.value.code == 0
        assert "usage:" in capsys.readouterr().out


def test_notebooks_run_top_to_bottom(first_run, monkeypatch):
    from pipeline.notebooks import execute_notebooks

    executed = execute_notebooks(first_run, first_run / "notebooks", env={"RD_FOLDS": "2"})
    assert [p.stem for p in executed] == ["01-corpus", "02-clusters", "03-trends", "04-evaluation"]
    stored = sorted((ROOT / "notebooks").glob("*.ipynb"))
    for path in stored:  # the stored notebooks carry no outputs
        nb = json.loads(path.read_text(encoding="utf-8"))
        assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"), path.name


def test_rerun_computes_only_the_new_story(tmp_path):
    """A second run takes unchanged stories' themes and factors from the per-story memo: only the
    new story is parsed, classified and extracted, and the outputs cover every story."""
    from pipeline.run import analyze, write_outputs

    folder = tmp_path / "verhalen"
    folder.mkdir()
    variants = [("ede", "Ede", "drie voedingsbedrijven"), ("wageningen", "Wageningen", "een zuivelfabriek"),
                ("barneveld", "Barneveld", "twee pluimveebedrijven en een slachterij")]

    run_id = uuid.uuid4().hex[:8]  # new content on every test run, so the shared cache cannot know it

    def write(key, place, firms):
        text = (NEW_STORY.replace("nieuw-verhaal-ede", f"verhaal-{key}").replace("Ede", place)
                .replace("drie voedingsbedrijven", firms) + f"\nHet project heeft dossiernummer {run_id}.\n")
        (folder / f"{key}.md").write_text(text, encoding="utf-8")

    for v in variants[:2]:
        write(*v)
    settings = Settings().replace(corpus_dir=folder, out_dir=tmp_path / "build", progress=False,
                                  review_file=tmp_path / "geen.xlsx")
    first = analyze(settings, echo=None)
    write_outputs(first, settings.out_dir)
    assert set(first.sentences["story_id"]) == {"verhaal-ede", "verhaal-wageningen"}
    write(*variants[2])
    second = analyze(settings, echo=None)
    write_outputs(second, settings.out_dir)
    assert set(second.sentences["story_id"]) == {"verhaal-barneveld"}  # the only story parsed this time
    assert set(second.themes["story_id"]) == {"verhaal-ede", "verhaal-wageningen", "verhaal-barneveld"}
    old = first.factors.sort_values(["story_id", "start"]).reset_index(drop=True)
    again = second.factors[second.factors.story_id != "verhaal-barneveld"].sort_values(["story_id", "start"])
    pd.testing.assert_frame_equal(old, again.reset_index(drop=True), check_dtype=False)
    assert not (settings.out_dir / "sentences.parquet").exists()  # analyze does not write partial sentences
    assert run_cli("parse", "--corpus", str(folder), "--out", str(tmp_path / "parsed")) == 0
    parsed = pd.read_parquet(tmp_path / "parsed" / "sentences.parquet")
    assert set(parsed["story_id"]) == {"verhaal-ede", "verhaal-wageningen", "verhaal-barneveld"}


def test_analyze_a_folder_of_annotated_stories_only(tmp_path):
    """Stories the editors labelled (here: the gold corpus) keep their labels; nothing to classify."""
    from pipeline.run import analyze

    folder = tmp_path / "verhalen"
    folder.mkdir()
    for sid in SAMPLE[:2]:
        shutil.copy(ROOT / "corpus" / "stories" / f"{sid}.md", folder)
    settings = Settings().replace(corpus_dir=folder, progress=False, review_file=tmp_path / "geen.xlsx")
    run = analyze(settings, echo=None)
    assert set(run.themes["flag"]) == {"redacteur"} and len(run.factors) and len(run.clusters)


def test_parallel_writing_gives_the_same_outputs_and_reports_a_failing_child(tmp_path, monkeypatch):
    """On large runs the review sheet is written in a forked child process: same files, same
    content, and an error in the child reaches the caller while the other outputs are written."""
    import openpyxl

    import pipeline.review
    from pipeline.run import analyze, write_outputs

    folder = tmp_path / "verhalen"
    folder.mkdir()
    for sid in SAMPLE[:2]:
        shutil.copy(ROOT / "corpus" / "stories" / f"{sid}.md", folder)
    run = analyze(Settings().replace(corpus_dir=folder, progress=False, review_file=tmp_path / "geen.xlsx"),
                  echo=None)
    one = write_outputs(run, tmp_path / "one", parallel=False)
    two = write_outputs(run, tmp_path / "two", parallel=True)
    assert sorted(p.name for p in one) == sorted(p.name for p in two) and "review.xlsx" in {p.name for p in two}
    for path in one:
        other = tmp_path / "two" / path.name
        if path.suffix == ".xlsx":
            a, b = openpyxl.load_workbook(path), openpyxl.load_workbook(other)
            assert a.sheetnames == b.sheetnames
            for name in a.sheetnames:
                assert list(a[name].values) == list(b[name].values)
        elif path.suffix in (".csv", ".json", ".md", ".html", ".txt"):
            assert path.read_bytes() == other.read_bytes(), path.name

    def broken(*args, **kwargs):
        raise ValueError("schijf vol")

    monkeypatch.setattr(pipeline.review, "write_review", broken)
    with pytest.raises(RuntimeError, match="schijf vol"):
        write_outputs(run, tmp_path / "three", parallel=True)
    assert (tmp_path / "three" / "draft.json").exists() and not (tmp_path / "three" / "review.xlsx").exists()
