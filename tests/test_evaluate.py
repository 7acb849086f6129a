"""The evaluation's agreement between two annotators, on stories written for the test."""
from __future__ import annotations

import pandas as pd
import pytest

from pipeline.evaluate import annotator_agreement

TEXTS = {"a": "De jobcoach komt elke week langs. Er is te weinig budget. Het weer was mooi.",
         "b": "Werkgevers kennen de regeling niet. Een vaste contactpersoon helpt.",
         "c": "Een verhaal dat alleen de tweede annotator las."}


def _labels(rows):
    return pd.DataFrame([{"story_id": s, "themes": t, "main_theme": t[0] if t else ""} for s, t in rows])


def _factors(rows):
    return pd.DataFrame([{"story_id": s, "factor_index": i, "polarity": p, "evidence": e, "phrase": e,
                          "reference": None, "annotator": who} for i, (s, p, e, who) in enumerate(rows)])


def _span(story, sentence):
    start = TEXTS[story].index(sentence)
    return start, start + len(sentence)


def test_second_annotator_is_scored_against_the_first_annotator_only():
    stories = pd.DataFrame({"story_id": list(TEXTS), "text": list(TEXTS.values())})
    labels = _labels([("a", ["praktijkleren", "jeugdwerkloosheid"]), ("b", ["ken-je-klant"])])
    gold = _factors([("a", "succes", "De jobcoach komt elke week langs.", "first"),
                     ("a", "knelpunt", "Er is te weinig budget.", "first"),
                     ("b", "knelpunt", "Werkgevers kennen de regeling niet.", "first"),
                     # adopted from the second annotation: not part of what the second is scored against
                     ("b", "succes", "Een vaste contactpersoon helpt.", "second")])
    labels2 = _labels([("a", ["jeugdwerkloosheid", "praktijkleren"]), ("b", ["ken-je-klant"]), ("c", [])])
    second = _factors([("a", "succes", "De jobcoach komt elke week langs.", "first"),
                       ("a", "knelpunt", "Het weer was mooi.", "first"),
                       ("b", "succes", "Een vaste contactpersoon helpt.", "first"),
                       ("b", "knelpunt", "Werkgevers kennen de regeling niet.", "first")])
    predicted = pd.DataFrame([{"story_id": "a", "polarity": "succes",
                               "start": _span("a", "De jobcoach komt")[0], "end": _span("a", "De jobcoach komt")[1]}])

    a = annotator_agreement(stories, labels, gold, labels2, second, predicted)

    assert a.n_stories == 2  # "c" has no first annotation
    assert a.main_agreement == pytest.approx(0.5)  # same themes, but "a" has its main theme swapped
    assert a.themes["micro_f1"] == pytest.approx(1.0)
    assert (a.n_first, a.n_second, a.n_adopted) == (3, 4, 1)
    assert a.factors["succes"]["precision"] == pytest.approx(0.5)
    assert a.factors["succes"]["recall"] == pytest.approx(1.0)
    assert a.factors["knelpunt"]["precision"] == pytest.approx(0.5)
    assert a.factors["knelpunt"]["recall"] == pytest.approx(0.5)
    assert a.model_first["succes"]["f1"] == pytest.approx(1.0)
    assert a.model_first["knelpunt"]["recall"] == 0.0


def test_no_second_annotation_gives_no_agreement():
    stories = pd.DataFrame({"story_id": ["a"], "text": [TEXTS["a"]]})
    labels = _labels([("a", ["praktijkleren"])])
    gold = _factors([("a", "succes", "De jobcoach komt elke week langs.", "first")])
    assert annotator_agreement(stories, labels, gold, _labels([]).reindex(columns=["story_id", "themes", "main_theme"]),
                               _factors([]), None) is None
