"""Ingestion: every input format and every kind of bad input, on fixtures written by the tests."""
from __future__ import annotations

import hashlib
import json
from datetime import date

import pandas as pd
import pytest

from pipeline.__main__ import main
from pipeline.ingest import (detect_language, ingest, near_duplicate_pairs, normalise_text, parse_date,
                             select_period)
from tests.conftest import DUTCH_BODY, md_story


def problems_for(result, fragment: str):
    return result.report[result.report["path"].str.contains(fragment, regex=False)]


def test_markdown_with_front_matter(story_dir, settings):
    (story_dir / "a.md").write_text(md_story("job-academie", organisations="[UWV, Gemeente Enschede]",
                                             source="samenvoordeklant.nl"), encoding="utf-8")
    res = ingest(settings, echo=None)
    row = res.stories.iloc[0]
    assert row.story_id == "job-academie"
    assert row.title == "Een voorbeeldverhaal"
    assert row.date == pd.Timestamp("2023-05-01")
    assert row.region == "Twente" and not row.region_inferred
    assert row.organisations == "UWV; Gemeente Enschede"
    assert row.language == "nl" and row.n_words > 50
    assert row.content_hash == hashlib.sha256(row.text.encode()).hexdigest()[:16]
    assert res.report.empty


def test_id_falls_back_to_file_name(story_dir, settings):
    (story_dir / "Mijn Verhaal.md").write_text(md_story(story_id=None), encoding="utf-8")
    assert ingest(settings, echo=None).stories.story_id.tolist() == ["mijn-verhaal"]


def test_plain_text_first_line_is_title_and_hyphenation_repaired(story_dir, settings):
    text = ("Werkgevers in Enschede zoeken personeel\n"
            "De gemeente Enschede en UWV brengen werkzoekenden en werkgevers bij elkaar. Het arbeids-\n"
            "marktbeleid van de regio is gericht op duurzaam werk voor iedereen die dat wil en kan.\n"
            "De werkgevers- en werkzoekendendienstverlening werkt daarvoor nauw samen met de scholen.\n")
    (story_dir / "verhaal.txt").write_text(text, encoding="utf-8")
    res = ingest(settings, echo=None)
    row = res.stories.iloc[0]
    assert row.title == "Werkgevers in Enschede zoeken personeel"
    assert "arbeidsmarktbeleid" in row.text
    assert "werkgevers- en werkzoekendendienstverlening" in row.text
    assert "\n" not in row.text  # hard-wrapped lines joined into one paragraph
    # no region in metadata: inferred from the municipality named in the text, and marked
    assert row.region == "Twente" and row.region_inferred
    assert problems_for(res, "verhaal.txt").problem.str.contains("inferred").any()


def test_html_main_text_without_scripts_and_navigation(story_dir, settings):
    html = f"""<html><head><title>Site | Verhaal</title><meta name="date" content="2022-02-01">
    <meta name="region" content="Rijnmond"><script>var x = "geheim";</script><style>p {{color: red}}</style></head>
    <body><nav><a href="/">Home</a> Menu item</nav><header>Kop van de site</header>
    <article><h1>Job Academie in Rotterdam</h1><p>{DUTCH_BODY}</p><h2>Wat werkt</h2>
    <ul><li>Een vaste contactpersoon bij de gemeente.</li><li>Korte lijnen met de werkgevers.</li></ul></article>
    <footer>Copyright en cookies</footer></body></html>"""
    (story_dir / "pagina.html").write_text(html, encoding="utf-8")
    row = ingest(settings, echo=None).stories.iloc[0]
    assert row.title == "Job Academie in Rotterdam"
    assert row.region == "Rijnmond" and row.date == pd.Timestamp("2022-02-01")
    for junk in ("geheim", "color", "Menu item", "Kop van de site", "cookies"):
        assert junk not in row.text
    assert "## Wat werkt" in row.text
    assert "- Een vaste contactpersoon bij de gemeente." in row.text.split("\n\n")


def test_docx_headings_and_lists(story_dir, settings):
    import docx

    document = docx.Document()
    document.add_heading("Simpel switchen in Amsterdam", level=1)
    document.add_paragraph("date: 2021-09-01")
    document.add_paragraph("region: Groot Amsterdam")
    document.add_paragraph(DUTCH_BODY)
    document.add_heading("Knelpunten", level=2)
    document.add_paragraph("Te weinig begeleiders op de werkvloer.", style="List Bullet")
    document.save(story_dir / "word.docx")
    row = ingest(settings, echo=None).stories.iloc[0]
    assert row.title == "Simpel switchen in Amsterdam"
    assert row.region == "Groot Amsterdam" and row.date == pd.Timestamp("2021-09-01")
    assert "## Knelpunten" in row.text and "- Te weinig begeleiders op de werkvloer." in row.text
    assert row.format == "docx"


def test_csv_and_jsonl_exports(story_dir, settings):
    pd.DataFrame([{"id": "csv-1", "title": "Uit CSV", "date": "2020-01-02", "region": "Fryslân", "text": DUTCH_BODY}]
                 ).to_csv(story_dir / "export.csv", index=False)
    body2 = DUTCH_BODY.replace("De consulenten", "De jobcoaches")
    with open(story_dir / "export.jsonl", "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"id": "json-1", "title": "Uit JSONL", "date": "2021-03-04", "region": "Zeeland",
                             "text": body2 + " Daarnaast helpt een vast team van drie mensen in Middelburg."}) + "\n")
        fh.write("{kapot\n")
    res = ingest(settings, echo=None)
    stories = res.stories.set_index("story_id")
    assert stories.loc["csv-1", "region"] == "Friesland"  # alias resolved
    assert stories.loc["json-1", "region"] == "Zeeland"
    bad = problems_for(res, "export.jsonl:2")
    assert len(bad) == 1 and "invalid JSON" in bad.iloc[0].problem and bad.iloc[0].action == "skipped"


@pytest.mark.parametrize("name,content,expected", [
    ("leeg.md", b"", "empty file"),
    ("spaties.txt", b"   \n\n  ", "empty file"),
    ("plaatje.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR" + bytes(range(256)), "binary"),
    ("kapot.docx", b"PK\x03\x04 dit is geen echte docx", "docx"),
    ("data.xlsx", b"PK\x03\x04", "unsupported file type"),
    ("alleen-meta.md", b"---\nid: x\ntitle: y\n---\n\n", "no story text"),
])
def test_unusable_files_are_skipped_with_a_message(story_dir, settings, name, content, expected):
    (story_dir / name).write_bytes(content)
    (story_dir / "goed.md").write_text(md_story("goed"), encoding="utf-8")
    lines = []
    res = ingest(settings, echo=lines.append)
    assert res.stories.story_id.tolist() == ["goed"]  # the run continued with the rest
    rows = problems_for(res, name)
    assert len(rows) == 1 and expected in rows.iloc[0].problem and rows.iloc[0].action == "skipped"
    assert any(name in line and expected in line for line in lines)


def test_cp1252_is_decoded_with_a_warning(story_dir, settings):
    text = md_story("ansi", body=DUTCH_BODY + " Het café in Enschede doet ook mee, zegt Renée.")
    (story_dir / "ansi.md").write_bytes(text.replace("‘", "'").replace("’", "'").encode("cp1252"))
    res = ingest(settings, echo=None)
    assert "café" in res.stories.iloc[0].text and "Renée" in res.stories.iloc[0].text
    assert problems_for(res, "ansi.md").problem.str.contains("cp1252").any()


def test_undecodable_bytes_are_skipped(story_dir, settings):
    (story_dir / "rommel.txt").write_bytes(("Titel\n" + DUTCH_BODY).encode("utf-8") + b"\x81\x8d\x8f\x90\x9d" * 3)
    res = ingest(settings, echo=None)
    assert res.stories.empty
    assert "not valid UTF-8" in problems_for(res, "rommel.txt").iloc[0].problem


def test_invalid_front_matter_keeps_story_with_warning(story_dir, settings):
    (story_dir / "fm.md").write_text("---\nid: fm\ntitle: [niet gesloten\n---\n\n" + DUTCH_BODY, encoding="utf-8")
    res = ingest(settings, echo=None)
    assert res.stories.story_id.tolist() == ["fm"]  # file name as id
    assert problems_for(res, "fm.md").problem.str.contains("not valid YAML").any()


def test_unknown_region_and_bad_date(story_dir, settings):
    (story_dir / "r.md").write_text(md_story("r", region="Atlantis", date="31-02-2021"), encoding="utf-8")
    res = ingest(settings, echo=None)
    row = res.stories.iloc[0]
    msgs = " | ".join(problems_for(res, "r.md").problem)
    assert "unknown region 'Atlantis'" in msgs and "cannot be read" in msgs
    assert pd.isna(row.date)
    assert row.region == "" and not row.region_inferred  # the text names no place either


def test_non_dutch_text_is_skipped(story_dir, settings):
    english = ("The municipality and the employment agency work together to help people into work. "
               "Their consultants know the employers and they visit the shop floor every week, which "
               "is why the approach works so well for the people who have been out of work for years.")
    (story_dir / "english.md").write_text(md_story("english", body=english), encoding="utf-8")
    res = ingest(settings, echo=None)
    assert res.stories.empty
    assert "not Dutch" in problems_for(res, "english.md").iloc[0].problem


def test_partly_english_is_kept_with_warning(story_dir, settings):
    mixed = DUTCH_BODY + " " + ("The international workers told us that the job fair was very useful for them "
                                "and that they would like to have more of these events in the region. ")
    (story_dir / "mixed.md").write_text(md_story("mixed", body=mixed), encoding="utf-8")
    res = ingest(settings, echo=None)
    assert res.stories.story_id.tolist() == ["mixed"]
    assert problems_for(res, "mixed.md").problem.str.contains("partly in another language").any()


def test_huge_file_is_skipped(story_dir, settings):
    settings = settings.replace(max_file_bytes=2_000)
    (story_dir / "groot.md").write_text(md_story("groot", body=(DUTCH_BODY + "\n\n") * 20), encoding="utf-8")
    res = ingest(settings, echo=None)
    assert res.stories.empty and "too large" in res.report.iloc[0].problem


def test_exact_and_near_duplicates_and_duplicate_ids(story_dir, settings):
    (story_dir / "a.md").write_text(md_story("a"), encoding="utf-8")
    (story_dir / "b.md").write_text(md_story("b"), encoding="utf-8")  # same text, other id
    near = DUTCH_BODY.replace("elke week", "iedere week")
    (story_dir / "c.md").write_text(md_story("c", body=near), encoding="utf-8")
    other = ("De jongeren van het praktijkonderwijs in Tilburg lopen stage bij een ziekenhuis. Ze leren er "
             "schoonmaken, koken en de patiënten helpen, en krijgen daarna vaak een baan aangeboden.")
    (story_dir / "d.md").write_text(md_story("a", body=other), encoding="utf-8")  # id 'a' again
    res = ingest(settings, echo=None)
    msgs = res.report.set_index(res.report.path.str.rsplit("/", n=1).str[-1])["problem"]
    assert "exact duplicate of" in msgs["b.md"]
    assert "near-duplicate of" in msgs["c.md"]
    assert "id also used by" in msgs["d.md"]
    assert sorted(res.stories.story_id) == sorted(["a", "a-" + res.stories.set_index("path").filter(like="d.md", axis=0).content_hash.iloc[0][:6]])


def test_input_files_are_never_modified(story_dir, settings):
    files = {"a.md": md_story("a").encode(), "leeg.txt": b"", "x.bin.md": b"\x00\x01"}
    for name, data in files.items():
        (story_dir / name).write_bytes(data)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in story_dir.iterdir()}
    main(["ingest", "--corpus", str(story_dir), "--out", str(settings.out_dir), "--quiet"])
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in story_dir.iterdir()}
    assert before == after
    assert (settings.out_dir / "stories.parquet").exists() and (settings.out_dir / "ingest-report.csv").exists()


def test_period_selection(story_dir, settings):
    for i, d in enumerate(["2019-06-01", "2021-01-15", "2021-12-31", "2023-03-03"]):
        body = DUTCH_BODY + f" Dit is verhaal nummer {i} over een ander project in een ander jaar en andere gemeente."
        body += " " + " ".join(["Nieuwe zin met andere woorden nummer %d." % (i * 10 + k) for k in range(30)])
        (story_dir / f"s{i}.md").write_text(md_story(f"s{i}", body=body, date=d), encoding="utf-8")
    stories = ingest(settings, echo=None).stories
    assert len(stories) == 4
    assert select_period(stories, date(2021, 1, 1), date(2021, 12, 31)).story_id.tolist() == ["s1", "s2"]
    assert len(select_period(stories, None, None)) == 4


def test_normalise_text_structure():
    raw = "# Kop\n\nEerste  regel\nloopt door.\n\n* item een\n* item **twee**\n\n1. genummerd\n\u00adZacht\u200b"
    assert normalise_text(raw) == "## Kop\n\nEerste regel loopt door.\n\n- item een\n\n- item twee\n\n- genummerd\n\nZacht"


def test_parse_date_variants():
    assert parse_date("2021-03-15") == date(2021, 3, 15)
    assert parse_date("15-03-2021") == date(2021, 3, 15)
    assert parse_date("15 maart 2021") == date(2021, 3, 15)
    assert parse_date("maart 2021") == date(2021, 3, 1)
    assert parse_date("2019") == date(2019, 1, 1)
    assert parse_date("gisteren") is None and parse_date("31-02-2021") is None


def test_language_detection():
    assert detect_language(DUTCH_BODY)[0] == "nl"
    assert detect_language("The employers and the workers have been working together for years.")[0] == "en"
    assert detect_language("Die Arbeitgeber und die Arbeitnehmer haben sich auf eine Lösung geeinigt, die für alle gilt.")[0] == "de"


def test_near_duplicate_pairs_ignores_different_texts():
    texts = [DUTCH_BODY, DUTCH_BODY.replace("elke week", "iedere week"), "Een heel ander verhaal over iets anders dan werk."]
    pairs = near_duplicate_pairs(texts, 0.8)
    assert [(i, j) for i, j, _ in pairs] == [(0, 1)]
