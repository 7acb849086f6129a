"""Factor detection and condensation on sentences written for the tests."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline import factors as F


def sentences_table(rows):
    """rows: (text, block_type, heading) -> a sentences table as nlp.parse_stories makes it."""
    out, pos = [], 0
    for i, (text, block, heading) in enumerate(rows):
        out.append({"story_id": "s", "sentence_index": i, "start": pos, "end": pos + len(text), "text": text,
                    "block": i, "block_type": block, "heading": heading, "lemmas": text.lower(), "pos": ""})
        pos += len(text) + 2
    return pd.DataFrame(out)


def test_headings_give_polarity():
    cues = F.load_cues()
    assert cues.heading_polarity("Wat werkt?") == "succes"
    assert cues.heading_polarity("Succesfactoren") == "succes"
    assert cues.heading_polarity("Knelpunten") == "knelpunt"
    assert cues.heading_polarity("Waar loop je tegenaan") == "knelpunt"
    assert cues.heading_polarity("Over het project") == ""


def test_two_polarity_sentence_is_split_at_the_clause():
    s = "Het vaste team helpt enorm bij de plaatsingen, maar de versnipperde budgetten remmen ons flink af."
    spans = F.split_units(s)
    assert len(spans) == 2
    assert s[spans[0][0]:spans[0][1]] == "Het vaste team helpt enorm bij de plaatsingen"
    assert s[spans[1][0]:spans[1][1]].startswith("maar de versnipperde budgetten")


def test_short_contrast_does_not_split():
    assert len(F.split_units("Maar dat werkte niet.")) == 1
    assert len(F.split_units("Klein, maar fijn project in de regio.")) == 1


def test_units_keep_offsets_into_the_story():
    table = sentences_table([("De jobcoach komt elke week langs, maar de werkgever heeft weinig tijd voor begeleiding.",
                              "paragraph", "")])
    units = F.make_units(table)
    assert len(units) == 2
    text = table.text.iloc[0]
    for u in units.itertuples():
        assert text[u.start:u.end] == u.text


def test_signals_see_headings_bullets_negation_and_quotes():
    table = sentences_table([("Knelpunten", "heading", ""),
                             ("Geen vaste contactpersoon bij de gemeente", "bullet", "Knelpunten"),
                             ("“Zonder de jobcoach was het nooit gelukt,” zegt Anja.", "paragraph", "Wat werkt")])
    units = F.make_units(table)
    sig = F.unit_signals(units, F.load_cues())
    assert sig[1]["heading_pol=knelpunt"] and sig[1]["bullet"] and sig[1]["neg"]
    assert sig[2]["heading_pol=succes"] and sig[2]["quote"] and sig[2]["neg"]


def test_cue_baseline():
    units = pd.DataFrame({"text": ["Het gebrek aan begeleiders is een knelpunt.", "De vaste contactpersoon helpt enorm.",
                                   "Het project startte in 2021."]})
    assert F.cue_baseline(units).tolist() == ["knelpunt", "succes", "none"]


def test_model_learns_polarity_from_examples():
    rows = []
    pos = ["De vaste contactpersoon helpt werkgevers enorm.", "Korte lijnen met de werkgever werken goed.",
           "Dankzij de jobcoach bleef iedereen aan het werk.", "De kracht zit in de persoonlijke aandacht."]
    neg = ["Het gebrek aan begeleiders remt de plaatsingen.", "De financiering blijft een lastig knelpunt.",
           "Te weinig tijd voor een echt gesprek.", "Werkgevers haken af door de papieren rompslomp."]
    neutral = ["Het project startte in 2021 in de regio.", "Er doen twaalf gemeenten mee.",
               "De bijeenkomst was in het stadhuis.", "Het team bestaat uit vier mensen."]
    for i in range(3):
        for t in pos + neg + neutral:
            rows.append((t, "paragraph", ""))
    table = sentences_table(rows)
    units = F.make_units(table)
    y = np.array((["succes"] * 4 + ["knelpunt"] * 4 + ["none"] * 4) * 3)
    model = F.FactorModel().fit(units, y)
    test = F.make_units(sentences_table([("De vaste jobcoach helpt de werkgever.", "paragraph", ""),
                                         ("Het gebrek aan tijd is lastig.", "paragraph", ""),
                                         ("Er doen vier gemeenten mee.", "paragraph", "")]))
    labels, conf = model.predict(test)
    assert labels.tolist() == ["succes", "knelpunt", "none"]
    assert np.all((conf > 0.33) & (conf <= 1))


def test_gold_spans_label_units():
    stories = pd.DataFrame({"story_id": ["s"], "text": ["Eerste zin over het project. De jobcoach helpt enorm."]})
    gold = pd.DataFrame([{"story_id": "s", "factor_index": 0, "polarity": "succes", "evidence": "De jobcoach helpt enorm",
                          "phrase": "jobcoach helpt", "reference": None}])
    spans = F.gold_spans(stories, gold)
    assert (spans.start.iloc[0], spans.end.iloc[0]) == (29, 52)
    units = pd.DataFrame({"story_id": ["s", "s"], "start": [0, 29], "end": [28, 53]})
    assert F.unit_labels(units, spans).tolist() == ["none", "succes"]


@pytest.mark.parametrize("text,expected", [
    ("Volgens Jansen is het van belang dat werkgevers een vaste contactpersoon hebben.",
     "werkgevers een vaste contactpersoon hebben"),
    ("“Korte lijnen met de werkgever maken het verschil,” zegt Anja de Vries.",
     "Korte lijnen met de werkgever maken het verschil"),
    ("Wat helpt is een vaste jobcoach.", "een vaste jobcoach"),
    ("Daarnaast werkt de intake goed.", "werkt de intake goed"),
])
def test_framing_is_stripped(text, expected):
    assert F.strip_framing(text) == expected


def test_condensed_phrase_is_short_without_parser():
    long = ("De gemeente heeft samen met het werkgeversservicepunt en drie scholen in de regio een vast team van "
            "consulenten opgezet dat werkgevers elke week bezoekt.")
    phrase, lemmas = F.condense(long)
    assert len(phrase.split()) <= 12 and lemmas


def test_context_features_stay_within_a_story():
    import scipy.sparse as sp

    X = sp.csr_matrix(np.arange(1, 6, dtype=float)[:, None])  # one feature: the row number + 1
    story = np.array(["a", "a", "a", "b", "b"])
    before = F.neighbour_rows(X, story, -1).toarray().ravel()
    after = F.neighbour_rows(X, story, 1).toarray().ravel()
    assert before.tolist() == [0, 1, 2, 0, 4]  # the first unit of each story has no unit before it
    assert after.tolist() == [2, 3, 0, 5, 0]  # nor does the last one have one after it
    where = F.position_features(np.array(["a"] * 11 + ["b"])).toarray()
    assert where[0].tolist() == [1, 0, 0] and where[5].tolist() == [0, 1, 0] and where[10].tolist() == [0, 0, 1]
    assert where.sum(axis=1).tolist() == [1] * 12  # every unit has exactly one position
