"""Known-factor hints: the reference model, and clustering with its scores (texts written for the tests)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline import references as R
from pipeline.cluster import cluster_factors
from pipeline.corpus import Reference
from pipeline.settings import Settings

REFS = [Reference("t.S1", "t", "succes", "vaste contactpersoon voor werkgevers"),
        Reference("t.S2", "t", "succes", "proefplaatsing voor een contract"),
        Reference("t.K1", "t", "knelpunt", "versnipperde financiering"),
        Reference("u.S1", "u", "succes", "jongeren actief opzoeken")]

TRAIN = [  # phrase, reference
    ("één accountmanager als aanspreekpunt voor het bedrijf", "t.S1"),
    ("bedrijven hebben een vast aanspreekpunt", "t.S1"),
    ("werkgever weet wie hij moet bellen", "t.S1"),
    ("eerst een paar weken meedraaien op proef", "t.S2"),
    ("proefperiode voordat er een contract komt", "t.S2"),
    ("meelopen op de werkvloer als proef", "t.S2"),
    ("geld zit in te veel verschillende potjes", "t.K1"),
    ("budgetten zijn versnipperd over regelingen", "t.K1"),
    ("de koffie op het kantoor is goed", None),
    ("het gebouw ligt aan het station", None),
    ("de gemeente heeft een nieuwe website", None),
]


def trained() -> R.ReferenceModel:
    table = pd.DataFrame({"phrase": [p for p, _ in TRAIN], "reference": [r for _, r in TRAIN]})
    return R.ReferenceModel().fit(R.factor_texts(table), table["reference"].tolist(), REFS)


def test_model_recognises_a_known_factor_in_new_words():
    model = trained()
    new = pd.DataFrame({"phrase": ["een vast aanspreekpunt voor de werkgever", "een proefperiode op de werkvloer"],
                        "themes": ["t", "t"], "polarity": ["succes", "succes"]})
    scores = model.group_scores(new, "t", "succes")
    assert model.group_references("t", "succes") == ["t.S1", "t.S2"]
    assert scores.shape == (2, 2) and (scores.sum(axis=1) <= 1 + 1e-9).all() and (scores >= 0).all()
    assert scores[0].argmax() == 0 and scores[1].argmax() == 1
    # only the references of the group's theme and polarity are candidates
    assert model.group_references("u", "succes") == ["u.S1"] and model.group_scores(new, "u", "succes").shape == (2, 1)
    assert model.group_scores(new, "v", "knelpunt").shape == (2, 0)


class FixedHints:
    """Known-factor scores given per phrase (to test the clustering side on its own)."""
    fingerprint_ = "fixed"

    def __init__(self, scores: dict):
        self.scores = scores

    def group_scores(self, group, theme, polarity):
        return np.array([self.scores.get(p, [0.0, 0.0]) for p in group["phrase"]], dtype=float).reshape(len(group), 2)


def _factors(phrases):
    rows = [{"story_id": f"s{i}", "sentence_index": 0, "start": 0, "end": 10, "polarity": "succes",
             "confidence": 1.0, "sentence": p, "phrase": p, "phrase_lemmas": p.lower(), "themes": "t"}
            for i, p in enumerate(phrases)]
    stories = pd.DataFrame({"story_id": [r["story_id"] for r in rows], "title": "", "region": "Twente",
                            "date": pd.Timestamp("2024-01-01"), "text": ""})
    return pd.DataFrame(rows), stories


def test_hints_bring_restatements_of_one_known_factor_together():
    a, b, c = "werkgever weet wie hij moet bellen", "één accountmanager per bedrijf", "meedraaien op proef"
    factors, stories = _factors([a, b, c])

    def groups(result):
        return sorted(sorted(g["phrase"]) for _, g in result.members.groupby("cluster_id"))

    assert groups(cluster_factors(factors, stories, threshold=0.6)) == sorted([[a], [b], [c]])  # no words in common
    hints = FixedHints({a: [0.9, 0.0], b: [0.8, 0.05], c: [0.0, 0.7]})
    assert groups(cluster_factors(factors, stories, threshold=0.6, references=hints)) == sorted([sorted([a, b]), [c]])
    apart = FixedHints({a: [0.6, 0.0], b: [0.0, 0.5]})  # each restates another published factor
    assert groups(cluster_factors(factors, stories, threshold=0.6, references=apart)) == sorted([[a], [b], [c]])
    faint = FixedHints({a: [0.05, 0.0], b: [0.05, 0.0]})  # a faint score is not enough to join
    assert groups(cluster_factors(factors, stories, threshold=0.6, references=faint)) == sorted([[a], [b], [c]])


def test_hints_are_used_when_new_phrases_join_memoised_clusters(tmp_path):
    a, b = "werkgever weet wie hij moet bellen", "één accountmanager per bedrijf"
    base = [f"zin over onderwerp nummer {i} met eigen woorden {i * 7}" for i in range(30)]
    hints = FixedHints({a: [0.9, 0.0], b: [0.8, 0.0]})
    factors, stories = _factors(base + [a])
    cluster_factors(factors, stories, threshold=0.6, references=hints, memo_dir=tmp_path)
    factors, stories = _factors(base + [a, b])  # one new phrase: placed into the memo's clusters
    result = cluster_factors(factors, stories, threshold=0.6, references=hints, memo_dir=tmp_path)
    joined = result.members.groupby("cluster_id")["phrase"].apply(set)
    assert {a, b} in joined.tolist()


def test_train_caches_by_fingerprint_and_needs_a_reference_file(tmp_path):
    from pipeline.corpus import load_annotations

    settings = Settings().replace(cache_dir=tmp_path, progress=False)
    _, gold = load_annotations(settings)
    first = R.train(gold, settings)
    assert first is not None and len(first.references_) > 50 and first.fingerprint_
    saved = tmp_path / "models" / f"references-{first.fingerprint_}.joblib"
    assert saved.exists()
    stamp = saved.stat().st_mtime_ns
    again = R.train(gold, settings)
    assert again.fingerprint_ == first.fingerprint_ and saved.stat().st_mtime_ns == stamp  # loaded, not retrained
    fewer = R.train(gold[gold["story_id"] != gold["story_id"].iloc[0]], settings)
    assert fewer.fingerprint_ != first.fingerprint_  # other training data: retrained
    assert R.train(gold, settings.replace(reference_file=tmp_path / "missing.yaml")) is None
