"""Clustering, ranking, the draft and its four renderings, on factors written for the tests."""
from __future__ import annotations

import io
import json
from datetime import date

import pandas as pd
import pytest

from pipeline.cluster import PhraseVectorizer, cluster_factors, cluster_vectors, stable_cluster_id
from pipeline.draft import Period, build_draft, parse_period, rank_clusters, trend_label
from pipeline.render.docx_out import render_docx
from pipeline.render.html import render_html
from pipeline.render.json_out import render_json
from pipeline.render.markdown import render_markdown

PHRASES = [
    # story, region, polarity, phrase
    ("a", "Twente", "succes", "een vast aanspreekpunt voor werkgevers"),
    ("b", "Zeeland", "succes", "vaste contactpersoon bij de gemeente"),
    ("c", "Rijnmond", "succes", "één vaste contactpersoon voor de kandidaat"),
    ("d", "Twente", "succes", "proefplaatsing van drie maanden bij de werkgever"),
    ("e", "Drenthe", "succes", "eerst een proefplaatsing, daarna een contract"),
    ("a", "Twente", "knelpunt", "versnipperde budgetten en regelingen"),
    ("f", "Flevoland", "knelpunt", "regelingen zijn versnipperd over potjes"),
    ("g", "Zeeland", "succes", "de werkgever bezoekt de school"),
]


def make_inputs(theme="praktijkleren", extra=()):
    rows, stories = [], {}
    for i, (sid, region, pol, phrase) in enumerate([*PHRASES, *extra]):
        rows.append({"story_id": sid, "sentence_index": i, "start": 10 * i, "end": 10 * i + 9, "polarity": pol,
                     "confidence": 0.9, "sentence": f"Zin {i}: {phrase}.", "phrase": phrase,
                     "phrase_lemmas": phrase.lower(), "themes": theme})
        stories[sid] = {"story_id": sid, "title": f"Verhaal {sid}", "region": region,
                        "date": pd.Timestamp(f"202{i % 5}-03-01"), "text": ""}
    return pd.DataFrame(rows), pd.DataFrame(list(stories.values()))


def clusters_of(result):
    m = result.members
    return sorted(sorted(g["phrase"]) for _, g in m.groupby("cluster_id"))


def test_same_factor_in_other_words_lands_together():
    factors, stories = make_inputs()
    result = cluster_factors(factors, stories, threshold=0.75)
    groups = clusters_of(result)
    contact = sorted(["een vast aanspreekpunt voor werkgevers", "vaste contactpersoon bij de gemeente",
                      "één vaste contactpersoon voor de kandidaat"])
    assert contact in groups
    assert sorted(["eerst een proefplaatsing, daarna een contract",
                   "proefplaatsing van drie maanden bij de werkgever"]) in groups
    assert ["de werkgever bezoekt de school"] in groups  # a factor of one story is still a cluster
    assert sum(len(g) for g in groups) == len(factors)  # nobody dropped


def test_concept_lexicon_joins_synonyms(tmp_path):
    factors = pd.DataFrame([
        {"story_id": "x", "start": 0, "end": 5, "polarity": "succes", "phrase": "één gezicht naar de werkgever",
         "phrase_lemmas": "één gezicht naar de werkgever", "sentence": "", "themes": "t"},
        {"story_id": "y", "start": 0, "end": 5, "polarity": "succes", "phrase": "vast aanspreekpunt",
         "phrase_lemmas": "vast aanspreekpunt", "sentence": "", "themes": "t"}])
    stories = pd.DataFrame({"story_id": ["x", "y"], "region": ["Twente", "Zeeland"], "date": pd.NaT, "title": ""})
    empty = tmp_path / "concepts.yaml"
    empty.write_text("concepts: []\n", encoding="utf-8")
    apart = cluster_factors(factors, stories, threshold=0.7, vectorizer=PhraseVectorizer(concepts_path=empty))
    together = cluster_factors(factors, stories, threshold=0.7)
    assert len(apart.clusters) == 2 and len(together.clusters) == 1


def test_clustering_is_deterministic_with_stable_ids():
    factors, stories = make_inputs()
    first = cluster_factors(factors, stories, threshold=0.75)
    shuffled = factors.sample(frac=1.0, random_state=3)
    second = cluster_factors(shuffled, stories, threshold=0.75)
    assert sorted(first.clusters.cluster_id) == sorted(second.clusters.cluster_id)
    c = first.members[first.members.cluster_id == first.members.cluster_id.iloc[0]]
    assert stable_cluster_id(c) == c.cluster_id.iloc[0]
    # adding an unrelated factor does not change the ids of the other clusters
    more, stories2 = make_inputs(extra=[("h", "Achterhoek", "knelpunt", "wachtlijst bij de ggz")])
    third = cluster_factors(more, stories2, threshold=0.75)
    assert set(first.clusters.cluster_id) <= set(third.clusters.cluster_id)


def test_support_label_and_keywords():
    factors, stories = make_inputs()
    result = cluster_factors(factors, stories, threshold=0.75)
    big = result.clusters.sort_values("n_members").iloc[-1]
    assert big.n_stories == 3 and big.n_regions == 3 and big.regions == "Rijnmond; Twente; Zeeland"
    assert big.label in {"een vast aanspreekpunt voor werkgevers", "vaste contactpersoon bij de gemeente",
                         "één vaste contactpersoon voor de kandidaat"}
    assert big.keywords


def test_large_groups_use_the_sparse_path_and_agree():
    factors, stories = make_inputs()
    exact = cluster_factors(factors, stories, threshold=0.75)
    sparse = cluster_factors(factors, stories, threshold=0.75, max_exact=2)
    assert len(sparse.clusters) >= 1 and sparse.members.shape[0] == exact.members.shape[0]
    assert cluster_vectors(PhraseVectorizer().fit_transform(["a"], ["a"]), 0.5).tolist() == [0]
    # empty phrases (no features) stay on their own on both paths
    texts = ["vaste contactpersoon", "", "vaste contactpersoon bij de gemeente", "", "proefplaatsing"]
    X = PhraseVectorizer().fit_transform(texts, texts)
    for max_exact in (100, 2):
        labels = cluster_vectors(X, 0.6, max_exact=max_exact)
        assert labels[1] != labels[3] and labels[1] not in labels[[0, 2, 4]]


def test_ranking_by_stories_then_regions():
    clusters = pd.DataFrame([
        {"cluster_id": "c1", "theme": "t", "polarity": "succes", "label": "b", "n_stories": 3, "n_regions": 1},
        {"cluster_id": "c2", "theme": "t", "polarity": "succes", "label": "a", "n_stories": 3, "n_regions": 2},
        {"cluster_id": "c3", "theme": "t", "polarity": "succes", "label": "c", "n_stories": 5, "n_regions": 1},
        {"cluster_id": "c4", "theme": "t", "polarity": "knelpunt", "label": "d", "n_stories": 1, "n_regions": 1}])
    ranked = rank_clusters(clusters)
    assert ranked[ranked.polarity == "succes"].cluster_id.tolist() == ["c3", "c2", "c1"]
    assert ranked.set_index("cluster_id").loc["c4", "rank"] == 1


@pytest.fixture
def draft():
    hostile = '<script>alert("x")</script> & <img src="http://evil.example/x.png"> “citaat”'
    factors, stories = make_inputs(extra=[("z", "Twente", "succes", "vaste contactpersoon " + hostile)])
    stories.loc[stories.story_id == "z", "title"] = "Titel <b>vet</b> " + hostile
    factors.loc[factors.story_id == "z", "sentence"] = hostile
    result = cluster_factors(factors, stories, threshold=0.75)
    themes = pd.DataFrame({"story_id": stories.story_id, "themes": "praktijkleren"})
    return build_draft(result.clusters, result.members, stories, themes, top_n=3)


def test_draft_json_shape(draft):
    data = json.loads(render_json(draft))
    assert {"schema_version", "period", "themes"} <= set(data)
    theme = next(t for t in data["themes"] if t["key"] == "praktijkleren")
    assert {"key", "name", "n_stories", "regions", "items"} <= set(theme)
    item = theme["items"][0]
    assert {"cluster_id", "polarity", "rank", "label", "keywords", "n_stories", "regions", "members"} <= set(item)
    assert {"story_id", "sentence", "start", "end", "phrase"} <= set(item["members"][0])
    assert item["polarity"] in ("succes", "knelpunt")
    assert len(item["quotes"]) <= 3 and all(q["title"] for q in item["quotes"])


def test_markdown_lists_top_items(draft):
    md = render_markdown(draft)
    assert "## Praktijkleren" in md and "### De 3 belangrijkste succesfactoren" in md
    assert "### De 1 belangrijkste knelpunten" in md or "### De 2 belangrijkste knelpunten" in md
    assert "<script>" not in md


def test_html_escapes_story_text_and_makes_no_external_requests(draft):
    page = render_html(draft)
    assert "<script" not in page.lower()
    assert "<img" not in page.lower()
    assert "&lt;script&gt;" in page and "&lt;b&gt;vet&lt;/b&gt;" in page
    from html.parser import HTMLParser

    class Tags(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags = []

        def handle_starttag(self, tag, attrs):
            self.tags.append((tag, dict(attrs)))

    parser = Tags()
    parser.feed(page)
    names = {t for t, _ in parser.tags}
    assert not names & {"script", "img", "link", "iframe", "object", "embed"}
    for _, attrs in parser.tags:
        assert "src" not in attrs
        assert attrs.get("href", "#").startswith("#")
    assert "@import" not in page and "url(" not in page
    assert "<svg" in page  # the bar chart
    assert page.count("<section") == 9


def test_docx_opens_with_headings_lists_and_quotes(draft):
    import docx

    document = docx.Document(io.BytesIO(render_docx(draft)))
    styles = [p.style.name for p in document.paragraphs]
    texts = [p.text for p in document.paragraphs]
    assert "Heading 1" in styles and "List Number" in styles and "Quote" in styles
    assert "Praktijkleren" in texts
    assert any("<script>" in t for t in texts)  # text kept literally, not interpreted


def test_periods_and_trends():
    assert parse_period("2024") == Period(date(2024, 1, 1), date(2024, 12, 31))
    assert parse_period("2024H1") == Period(date(2024, 1, 1), date(2024, 6, 30))
    assert parse_period("2024Q3") == Period(date(2024, 7, 1), date(2024, 9, 30))
    assert parse_period("2024").previous() == Period(date(2023, 1, 1), date(2023, 12, 31))
    assert parse_period("2024H1").previous() == Period(date(2023, 7, 1), date(2023, 12, 31))
    assert parse_period("2024H1").label == "2024H1"
    assert Period(None, None).previous() is None
    with pytest.raises(ValueError):
        parse_period("vorig jaar")
    assert trend_label(3, 0) == "nieuw"
    assert trend_label(6, 2) == "groeiend"
    assert trend_label(1, 4) == "afnemend"
    assert trend_label(3, 3) == "stabiel"
    assert trend_label(3, None) == ""


def test_cluster_agreement_counts_each_factor_in_its_reference_theme():
    from pipeline.evaluate import cluster_agreement

    # factor f1..f4 from two-theme stories: each is a member of group "a" and group "b"
    members = pd.DataFrame({
        "theme": ["a", "a", "a", "a", "b", "b", "b", "b", "a"],
        "cluster_id": ["a1", "a1", "a2", "a2", "b1", "b2", "b3", "b4", "a3"],
    })
    refs = pd.Series(["a.S1", "a.S1", "a.S2", "a.S2", "a.S1", "a.S1", "a.S2", "a.S2", None])
    # in theme a, where the references belong, the clusters match them exactly
    assert cluster_agreement(members, refs) == pytest.approx(1.0)
    # pooled, the copies in theme b (clustered apart) count against the same clustering
    assert cluster_agreement(members, refs, own_theme=False) < 0.5
    # a clustering that ignores the references scores low in both views
    shuffled = members.assign(cluster_id=["a1", "a2", "a1", "a2", "b1", "b1", "b2", "b2", "a3"])
    assert cluster_agreement(shuffled, refs) < 0.1
