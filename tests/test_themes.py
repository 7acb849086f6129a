"""Theme classification on small documents written for the tests (no spaCy needed)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.settings import load_themes
from pipeline.themes import (FLAG_EDITOR, FLAG_NONE, ThemeClassifier, _best_threshold, classify, keyword_baseline,
                             label_matrix)

TEXTS = {
    "praktijkleren": "Kandidaten halen een praktijkverklaring in het mbo terwijl ze werken bij een leerbedrijf met een leermeester.",
    "psychische-kwetsbaarheid": "De ggz en de gemeente begeleiden mensen met psychische klachten naar werk met een IPS-trajectbegeleider.",
    "jeugdwerkloosheid": "Jongeren zonder startkwalificatie van het praktijkonderwijs krijgen een veilige tussenstap naar werk.",
}
FILLER = ["in de regio", "volgens de projectleider", "na een jaar", "met veel inzet", "samen met partners",
          "in de gemeente", "op de werkvloer", "met steun van UWV"]


def make_docs(n_per_theme: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for key, text in TEXTS.items():
        for i in range(n_per_theme):
            extra = " ".join(rng.choice(FILLER, 3))
            t = f"{text} {extra}. Verhaal {i}."
            rows.append({"story_id": f"{key}-{i}", "text": t, "lemmas": t.lower()})
            labels.append({"story_id": f"{key}-{i}", "themes": [key]})
    off_topic = ["De bibliotheek organiseert een voorleesmiddag voor kinderen.",
                 "Het nieuwe zwembad opent in het voorjaar zijn deuren.",
                 "Bewoners planten bomen langs de dijk bij het dorp.",
                 "De harmonie geeft een concert op het marktplein.",
                 "Een nieuwe fietsbrug verbindt de twee wijken.",
                 "Het museum toont schilderijen uit de gouden eeuw."]
    for i, t in enumerate(off_topic):
        rows.append({"story_id": f"anders-{i}", "text": t, "lemmas": t.lower()})
        labels.append({"story_id": f"anders-{i}", "themes": []})
    docs = pd.DataFrame(rows)
    labels = pd.DataFrame(labels)
    return docs, labels


@pytest.fixture(scope="module")
def trained():
    keys = tuple(t.key for t in load_themes())
    docs, labels = make_docs()
    Y = label_matrix(labels, keys)
    clf = ThemeClassifier(keys, min_df=1, threshold_folds=3).fit(docs, Y, [t[0] if t else "" for t in labels["themes"]])
    return clf, keys


def test_fit_predict_and_thresholds(trained):
    clf, keys = trained
    assert clf.thresholds_.shape == (len(keys),)
    assert np.all((clf.thresholds_ >= 0.15) & (clf.thresholds_ <= 0.85))
    new = pd.DataFrame([{"story_id": "nieuw", "text": TEXTS["jeugdwerkloosheid"] + " Een nieuw project.",
                         "lemmas": TEXTS["jeugdwerkloosheid"].lower()}])
    table = classify(new, clf)
    row = table.iloc[0]
    assert row.main_theme == "jeugdwerkloosheid"
    assert row.p_jeugdwerkloosheid > row.p_praktijkleren
    assert "jeugdwerkloosheid:" in row.terms  # the terms that drove the assignment
    assert set(table.columns) >= {"story_id", "main_theme", "themes", "flag"} | {f"p_{k}" for k in keys}


def test_story_without_a_theme_is_flagged_not_forced(trained):
    clf, _ = trained
    off = pd.DataFrame([{"story_id": "x", "text": "Het museum opent een nieuwe zaal met schilderijen voor kinderen.",
                         "lemmas": "het museum openen een nieuw zaal met schilderij voor kind"}])
    row = classify(off, clf).iloc[0]
    assert row.themes == "" and row.main_theme == "" and row.flag == FLAG_NONE


def test_editor_labels_are_never_overridden(trained):
    clf, _ = trained
    docs, _ = make_docs(1)
    editor = pd.DataFrame([{"story_id": "praktijkleren-0", "themes": ["ken-je-klant"]}])
    table = classify(docs, clf, editor).set_index("story_id")
    assert table.loc["praktijkleren-0", "themes"] == "ken-je-klant"
    assert table.loc["praktijkleren-0", "flag"] == FLAG_EDITOR
    assert table.loc["jeugdwerkloosheid-0", "flag"] != FLAG_EDITOR


def test_deterministic_and_save_load(trained, tmp_path):
    clf, keys = trained
    docs, labels = make_docs()
    again = ThemeClassifier(keys, min_df=1, threshold_folds=3).fit(docs, label_matrix(labels, keys),
                                                                    [t[0] if t else "" for t in labels["themes"]])
    np.testing.assert_allclose(again.predict_proba(docs), clf.predict_proba(docs))
    path = tmp_path / "themes.joblib"
    clf.save(path, {"note": "test"})
    loaded = ThemeClassifier.load(path)
    np.testing.assert_allclose(loaded.predict_proba(docs), clf.predict_proba(docs))
    assert path.with_suffix(".json").exists()


def test_unfitted_classifier_refuses_to_predict():
    docs, _ = make_docs(1)
    with pytest.raises(RuntimeError, match="not fitted"):
        ThemeClassifier(("a",)).predict_proba(docs)


def test_at_most_two_themes_the_most_probable():
    clf = ThemeClassifier(("a", "b", "c"))
    clf.thresholds_ = np.array([0.5, 0.5, 0.3])
    P = np.array([[0.9, 0.6, 0.7],    # all three pass: the two most probable are kept
                  [0.4, 0.6, 0.2],    # one passes
                  [0.1, 0.2, 0.25]])  # none passes: no theme, not forced
    assert clf.assign(P).tolist() == [[True, False, True], [False, True, False], [False, False, False]]
    assert clf.order_assigned(P, P) == [[0, 2], [1], []]
    clf.max_themes = 0  # no limit
    assert clf.assign(P)[0].tolist() == [True, True, True]


def test_best_threshold_prefers_separating_value():
    y = np.array([1, 1, 1, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.55, 0.4, 0.2, 0.1])
    t = _best_threshold(y, p)
    assert 0.4 < t <= 0.55


def test_keyword_baseline_uses_seed_terms():
    themes = load_themes()
    pred = keyword_baseline(["Een praktijkverklaring bij het leerbedrijf.", "Niets hier."], themes)
    keys = [t.key for t in themes]
    assert pred[0, keys.index("praktijkleren")] and not pred[1].any()
