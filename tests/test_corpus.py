"""The bundled corpus: the validator, the acceptance counts of the corpus issue, the reference lists."""
from __future__ import annotations

import shutil
from collections import Counter

import pytest
import yaml

from pipeline.__main__ import main
from pipeline.corpus import check, load_reference, statistics
from pipeline.settings import Settings, load_themes


@pytest.fixture(scope="module")
def stats():
    return statistics(Settings())


def test_validator_passes_on_the_bundled_corpus(capsys):
    assert main(["corpus", "check"]) == 0
    assert "0 problem(s)" in capsys.readouterr().out


def test_validator_finds_broken_annotations(tmp_path):
    s = Settings()
    stories, anns = tmp_path / "stories", tmp_path / "annotations"
    stories.mkdir(), anns.mkdir()
    sid = sorted(p.stem for p in s.annotations_dir.glob("*.yaml"))[0]
    shutil.copy(s.corpus_dir / f"{sid}.md", stories)
    ann = yaml.safe_load((s.annotations_dir / f"{sid}.yaml").read_text(encoding="utf-8"))
    ann["themes"] = ["praktijkleren", "geen-thema"]
    ann["factors"][0]["evidence"] = "Deze zin staat niet in het verhaal."
    ann["factors"].append({"polarity": "succes", "evidence": ann["factors"][1]["evidence"], "phrase": "x",
                           "reference": "praktijkleren.S9"})
    (anns / f"{sid}.yaml").write_text(yaml.safe_dump(ann, allow_unicode=True), encoding="utf-8")
    (stories / "zonder-annotatie.md").write_text("---\nid: zonder-annotatie\n---\nTekst.", encoding="utf-8")
    problems = "\n".join(check(s.replace(corpus_dir=stories, annotations_dir=anns)))
    assert "unknown theme key 'geen-thema'" in problems
    assert "evidence not found in story" in problems
    assert "unknown reference id 'praktijkleren.S9'" in problems
    assert "phrase must be a short phrase" in problems
    assert "zonder-annotatie.md: story has no annotation" in problems


def test_corpus_size_and_spread(stats):
    assert stats["n_stories"] >= 90
    assert stats["multi_theme"] >= 15
    assert stats["no_theme"] >= 1
    assert len([r for r in stats["region"] if r]) >= 25
    years = {int(y) for y in stats["year"] if y}
    assert min(years) <= 2017 and max(years) >= 2025 and len(years) >= 9
    assert stats["origin"]["nieuw"] >= 25
    assert len([f for f in stats["form"] if f]) == 5
    for theme in load_themes():
        assert stats["main_theme"][theme.key] >= 8, theme.key


def test_story_lengths(stats):
    # 300-900 words, except the deliberately very short hard case(s)
    assert stats["words"]["max"] <= 950
    assert stats["words"]["50%"] >= 300


def test_every_reference_factor_is_expressed_by_two_stories(stats):
    weak = {ref: n for ref, n in stats["reference_support"].items() if n < 2}
    assert not weak, weak


def test_reference_lists_cover_every_theme():
    refs = load_reference(Settings().reference_file)
    per_theme = Counter(r.theme for r in refs)
    assert set(per_theme) == {t.key for t in load_themes()}
    assert {r.polarity for r in refs} == {"succes", "knelpunt"}
    assert len(refs) == 72  # 5+5, 3+4, 6+3, 6+3, 4+1, 5+4, 4+4, 5+3, 4+3 in the 2022 publication


def test_generated_corpus_doc_is_current():
    from pipeline.corpus import render_statistics

    text = render_statistics(statistics(Settings()))
    on_disk = (Settings().corpus_dir.parent.parent / "docs" / "corpus.md").read_text(encoding="utf-8")
    assert on_disk == text, "docs/corpus.md is stale: run `make corpus-stats`"


def test_validator_checks_the_second_annotation_and_the_annotator_field(tmp_path):
    s = Settings()
    stories, anns, second = tmp_path / "stories", tmp_path / "annotations", tmp_path / "second"
    for d in (stories, anns, second):
        d.mkdir()
    sid = sorted(p.stem for p in s.annotations_dir.glob("*.yaml"))[0]
    shutil.copy(s.corpus_dir / f"{sid}.md", stories)
    ann = yaml.safe_load((s.annotations_dir / f"{sid}.yaml").read_text(encoding="utf-8"))
    ann["factors"][0]["annotator"] = "derde"
    (anns / f"{sid}.yaml").write_text(yaml.safe_dump(ann, allow_unicode=True), encoding="utf-8")
    evidence = ann["factors"][1]["evidence"]
    (second / f"{sid}.yaml").write_text(yaml.safe_dump({"id": sid, "themes": ["geen-thema"], "factors": [
        {"polarity": "succes", "evidence": evidence, "phrase": "een goede korte zin"},
        {"polarity": "kans", "evidence": "Niet in het verhaal.", "phrase": "een goede korte zin"}]},
        allow_unicode=True), encoding="utf-8")
    (second / "onbekend-verhaal.yaml").write_text("id: onbekend-verhaal\nthemes: []\nfactors: []\n", encoding="utf-8")
    problems = check(s.replace(corpus_dir=stories, annotations_dir=anns, second_annotation_dir=second))
    text = "\n".join(problems)
    assert "annotator 'derde' not one of first, second" in text
    assert f"second/{sid}.yaml: 'themes' must be a list of theme keys" in text
    assert f"second/{sid}.yaml: factor 2: polarity 'kans'" in text
    assert f"second/{sid}.yaml: factor 2: evidence not found in story" in text
    assert "onbekend-verhaal.yaml: second annotation has no story" in text
    assert not any(f"second/{sid}.yaml: factor 1" in p for p in problems)  # a good factor passes


def test_every_story_has_a_second_annotation():
    s = Settings()
    first = {p.stem for p in s.annotations_dir.glob("*.yaml")}
    second = {p.stem for p in s.second_annotation_dir.glob("*.yaml")}
    assert first == second
