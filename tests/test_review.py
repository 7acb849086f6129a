"""The editor's review loop: verdicts, carry-over across re-runs, unreadable sheets, atomic writes."""
from __future__ import annotations

import os

import openpyxl
import pandas as pd
import pytest

from pipeline import outputs
from pipeline.cluster import cluster_factors
from pipeline.review import (EditorInput, ReviewSheetError, apply_verdicts, member_keys, read_editor_sheet,
                             review_tables, write_review)
from tests.test_cluster_draft import make_inputs

THRESHOLD = 0.75


def clustered(extra=()):
    factors, stories = make_inputs(extra=extra)
    result = cluster_factors(factors, stories, threshold=THRESHOLD)
    themes = pd.DataFrame({"story_id": stories.story_id, "themes": "praktijkleren", "main_theme": "praktijkleren",
                           "flag": ""})
    return result.clusters, result.members, stories, themes


def cluster_with(members, phrase):
    return members.loc[members.phrase == phrase, "cluster_id"].iloc[0]


def leden(members, cid):
    return ";".join(member_keys(members[members.cluster_id == cid]))


def verdict_rows(clusters, members, rows):
    """rows: (phrase identifying the cluster, oordeel, eigen_label)."""
    out = []
    for phrase, oordeel, label in rows:
        cid = cluster_with(members, phrase)
        c = clusters.set_index("cluster_id").loc[cid]
        out.append({"cluster_id": cid, "theme": c.theme, "polarity": c.polarity, "oordeel": oordeel,
                    "eigen_label": label, "notitie": "", "leden": leden(members, cid)})
    return pd.DataFrame(out)


CONTACT = "vaste contactpersoon bij de gemeente"
TRIAL = "eerst een proefplaatsing, daarna een contract"
SCHOOL = "de werkgever bezoekt de school"
BUDGET = "versnipperde budgetten en regelingen"


def test_every_verdict():
    clusters, members, _, _ = clustered()
    n_before = len(clusters)
    school = cluster_with(members, SCHOOL)
    verdicts = verdict_rows(clusters, members, [
        (CONTACT, "akkoord", "Vast aanspreekpunt"),
        (TRIAL, "afwijzen", ""),
        (BUDGET, "splitsen", ""),
        (SCHOOL, "", "Werkgever komt op school"),
    ])
    contact = cluster_with(members, CONTACT)
    verdicts.loc[len(verdicts)] = {**verdicts.iloc[0].to_dict(), "oordeel": f"samenvoegen met {contact}",
                                   "eigen_label": "", "cluster_id": school, "leden": leden(members, school)}
    verdicts = verdicts.drop(index=3).reset_index(drop=True)  # the school cluster is merged instead
    out_c, out_m, notes = apply_verdicts(clusters, members, verdicts)
    by_id = out_c.set_index("cluster_id")
    assert by_id.loc[contact, "label"] == "Vast aanspreekpunt"  # own label replaces the generated one
    assert by_id.loc[contact, "generated_label"] != "Vast aanspreekpunt"
    assert by_id.loc[contact, "verdict"] == "akkoord"
    trial = cluster_with(members, TRIAL)
    assert trial not in by_id.index and trial not in set(out_m.cluster_id)  # rejected: out of the draft
    assert school not in by_id.index and SCHOOL in set(out_m[out_m.cluster_id == contact].phrase)  # merged
    assert by_id.loc[contact, "n_stories"] == 4
    budget_ids = set(out_m[out_m.phrase.isin([BUDGET, "regelingen zijn versnipperd over potjes"])].cluster_id)
    assert len(budget_ids) == 2  # split into one cluster per story
    assert len(out_c) == n_before - 2 + 1
    assert any("rejected" in n for n in notes)


def test_verdict_survives_a_rerun_with_new_stories():
    clusters, members, _, _ = clustered()
    verdicts = verdict_rows(clusters, members, [(CONTACT, "afwijzen", ""), (BUDGET, "akkoord", "Versnippering")])
    old_contact = verdicts.cluster_id.iloc[0]
    # a new story adds a member to the contact cluster: its id changes
    clusters2, members2, _, _ = clustered(extra=[("n", "Achterhoek", "succes", "een vaste contactpersoon voor iedereen")])
    new_contact = cluster_with(members2, CONTACT)
    assert new_contact != old_contact
    out_c, out_m, notes = apply_verdicts(clusters2, members2, verdicts)
    assert new_contact not in set(out_c.cluster_id)  # the rejection carried over
    assert out_c.set_index("cluster_id").loc[cluster_with(members2, BUDGET), "label"] == "Versnippering"
    assert not out_c.attrs["unplaced"].shape[0]


def test_unplaceable_verdict_is_kept_and_reported(tmp_path):
    clusters, members, stories, themes = clustered()
    verdicts = verdict_rows(clusters, members, [(TRIAL, "akkoord", "Proefplaatsing eerst")])
    verdicts.loc[0, "leden"] = "verdwenen-verhaal:0-9;ander-verdwenen:10-19"
    verdicts.loc[0, "cluster_id"] = "c0123456789"
    out_c, out_m, notes = apply_verdicts(clusters, members, verdicts)
    assert any("cannot be placed" in n and "c0123456789" in n for n in notes)
    tables = review_tables(out_c, out_m, stories, themes, EditorInput(verdicts, pd.DataFrame(columns=["story_id", "themes"])))
    kept = tables["niet_geplaatst"]
    assert kept.cluster_id.tolist() == ["c0123456789"] and kept.eigen_label.tolist() == ["Proefplaatsing eerst"]
    # and it is read back from the new sheet on the next run: never dropped
    write_review(tables, tmp_path)
    again = read_editor_sheet(tmp_path / "review.xlsx")
    assert "c0123456789" in set(again.verdicts.cluster_id)


def test_sheet_roundtrip_with_editor_input(tmp_path):
    clusters, members, stories, themes = clustered()
    tables = review_tables(clusters, members, stories, themes)
    write_review(tables, tmp_path)
    path = tmp_path / "review.xlsx"
    wb = openpyxl.load_workbook(path)
    ws = wb["clusters"]
    header = [c.value for c in ws[1]]
    ws.cell(row=2, column=header.index("oordeel") + 1, value="afwijzen")
    ws.cell(row=3, column=header.index("eigen_label") + 1, value="Mijn label")
    vs = wb["verhalen"]
    vheader = [c.value for c in vs[1]]
    vs.cell(row=2, column=vheader.index("themas_redactie") + 1, value="ken-je-klant; jeugdwerkloosheid")
    vs.cell(row=3, column=vheader.index("themas_redactie") + 1, value="onbekend-thema")
    editor_file = tmp_path / "editor.xlsx"
    wb.save(editor_file)
    editor = read_editor_sheet(editor_file)
    assert len(editor.verdicts) == 2
    assert editor.themes.themes.tolist() == [["ken-je-klant", "jeugdwerkloosheid"]]
    assert any("unknown theme key" in p for p in editor.problems)
    out_c, _, _ = apply_verdicts(clusters, members, editor.verdicts)
    assert len(out_c) == len(clusters) - 1


def test_missing_sheet_is_empty_input(tmp_path):
    editor = read_editor_sheet(tmp_path / "nope.xlsx")
    assert editor.verdicts.empty and editor.themes.empty


@pytest.mark.parametrize("content,message", [(b"dit is geen excel", "cannot be read"), (b"", "cannot be read")])
def test_unreadable_sheet_raises_a_clear_error(tmp_path, content, message):
    path = tmp_path / "review.xlsx"
    path.write_bytes(content)
    with pytest.raises(ReviewSheetError, match=message):
        read_editor_sheet(path)


def test_sheet_open_in_excel_is_refused(tmp_path):
    clusters, members, stories, themes = clustered()
    write_review(review_tables(clusters, members, stories, themes), tmp_path)
    (tmp_path / "~$review.xlsx").write_bytes(b"lock")
    with pytest.raises(ReviewSheetError, match="open in Excel"):
        read_editor_sheet(tmp_path / "review.xlsx")


def test_atomic_write_survives_a_crash(tmp_path, monkeypatch):
    target = tmp_path / "report.csv"
    outputs.write_text(target, "oude inhoud\n")

    def crash(self, *args, **kwargs):
        with open(args[0], "w", encoding="utf-8") as fh:
            fh.write("half geschre")
        raise KeyboardInterrupt

    import pyarrow.csv

    monkeypatch.setattr(pyarrow.csv, "write_csv", lambda table, path, *a, **k: crash(None, path))
    with pytest.raises(KeyboardInterrupt):
        outputs.write_csv(target, pd.DataFrame({"a": [1]}))
    assert target.read_text(encoding="utf-8") == "oude inhoud\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.csv"]  # no temporary file left behind


def test_atomic_review_write_survives_a_crash(tmp_path, monkeypatch):
    clusters, members, stories, themes = clustered()
    tables = review_tables(clusters, members, stories, themes)
    write_review(tables, tmp_path)
    before = (tmp_path / "review.xlsx").read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk vol")

    import xlsxwriter

    monkeypatch.setattr(xlsxwriter.Workbook, "close", crash)  # the workbook fails while being saved
    with pytest.raises(OSError):
        write_review(tables, tmp_path)
    assert (tmp_path / "review.xlsx").read_bytes() == before
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
