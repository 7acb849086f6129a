"""The machinery that makes large collections and re-runs fast: hashed character n-grams, the
ingest cache, the parse segments, the per-story memo, incremental clustering and the writers.
Speed itself is measured by `make bench`, not here; these tests check that the fast paths give
the right results."""
from __future__ import annotations

import json

import numpy as np
import openpyxl
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from pipeline import ingest as ingest_module
from pipeline.cluster import (PhraseVectorizer, assign_to_clusters, cluster_factors, cluster_vectors, concept_matrix,
                              load_concepts)
from pipeline.features import CharNgramVectorizer, char_ngram_counts
from pipeline.memo import known_hashes, memoized
from pipeline.nlp import SentenceStore
from pipeline.outputs import write_csv
from pipeline.render.json_out import render_json
from pipeline.review import MAX_CELL_CHARS, member_lists, review_tables, write_review
from tests.conftest import md_story
from tests.test_cluster_draft import clusters_of, make_inputs

TEXTS = ["Een vaste contactpersoon voor werkgevers", "werkgeversdienstverlening in de regio",
         "a", "", "Korte lijnen, snel schakelen!", "mbo-1 en praktijkleren in 's-Hertogenbosch"]


# --- character n-grams ---------------------------------------------------------------------------

def test_char_ngrams_count_what_sklearn_char_wb_counts():
    analyzer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5)).build_analyzer()
    counts = char_ngram_counts(TEXTS, (3, 5))
    for i, text in enumerate(TEXTS):
        assert counts[i].sum() == len(analyzer(text)), text


def test_char_ngram_vectorizer_fit_transform():
    vec = CharNgramVectorizer((3, 5), min_df=2)
    X = vec.fit_transform(TEXTS)
    assert X.shape == (len(TEXTS), vec.n_features_) and vec.n_features_ > 0
    assert np.allclose(vec.transform(TEXTS).toarray(), X.toarray())  # transform = fit_transform on the same texts
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    assert np.allclose(norms[norms > 0], 1.0)  # rows are L2-normalised
    # shared compound parts make texts similar; unrelated texts are not
    sim = (X @ X.T).toarray()
    assert sim[0, 1] > 0.5 > sim[0, 5]
    assert CharNgramVectorizer((3, 5), max_features=10).fit(TEXTS).n_features_ == 10
    with pytest.raises(ValueError):
        char_ngram_counts(TEXTS, (2, 4))


# --- concepts --------------------------------------------------------------------------------------

def test_concept_lookup_matches_the_concept_patterns():
    concepts = load_concepts()
    texts = ["een vast aanspreekpunt", "vaste contactpersonen", "korte lijnen met de school", "cv's doen er niet toe",
             "publiek-privaat samenwerken", "werkgevers betrekken bij de opleiding", "niets van dit alles", ""]
    fast = concept_matrix(texts, concepts).toarray()
    slow = np.array([[1.0 if c.pattern.search(t.lower()) else 0.0 for c in concepts] for t in texts])
    assert (fast == slow).all()
    ids = [c.id for c in concepts]
    assert fast[5, ids.index("werkgever-centraal")] == 1  # "werkgever* betrekken": a * inside a term
    assert fast[6].sum() == 0


# --- clustering: blocks and incremental re-runs -------------------------------------------------------

def test_blocks_keep_identical_phrases_together():
    texts = ["vaste contactpersoon"] * 6 + ["proefplaatsing bij de werkgever"] * 6 + ["budget versnipperd"] * 6
    X = PhraseVectorizer().fit_transform(texts, texts)
    labels = cluster_vectors(X, 0.5, max_exact=7)  # forces the blocked path
    assert len(set(labels[:6])) == 1 and len(set(labels[6:12])) == 1 and len(set(labels[12:])) == 1
    assert len(set(labels)) == 3


def test_assign_to_clusters_joins_or_starts_a_cluster():
    texts = ["vaste contactpersoon", "vaste contactpersoon bij de gemeente", "budget versnipperd"]
    vec = PhraseVectorizer()
    X = vec.fit_transform(texts, texts)
    labels = cluster_vectors(X, 0.6)
    new = ["een vaste contactpersoon", "de werkgever bezoekt de school"]
    got = assign_to_clusters(X, labels, vec.transform(new, new), 0.6)
    assert got[0] == labels[0] and got[1] not in set(labels)


def test_assign_to_clusters_in_chunks_equals_one_row_at_a_time():
    """Placing many new rows (more than one chunk of similarities) gives what placing them one by
    one, each against every earlier row, gives."""
    rng = np.random.default_rng(3)
    words = ["werkgever", "school", "budget", "coach", "regio", "jongeren", "contact", "proef", "loon", "team"]
    texts = [" ".join(rng.choice(words, 3)) for _ in range(700)]
    vec = PhraseVectorizer()
    X = vec.fit_transform(texts[:100], texts[:100])
    labels = cluster_vectors(X, 0.5)
    X_new = vec.transform(texts[100:], texts[100:])
    got = assign_to_clusters(X, labels, X_new, 0.5)
    expected = list(labels)
    for i in range(X_new.shape[0]):  # the reference: one row at a time
        rows = sp.vstack([X, X_new[:i + 1]]).tocsr()
        sims = (rows[:-1] @ rows[-1].T).toarray().ravel()
        ids = np.array(expected)
        means = {c: sims[ids == c].mean() for c in set(expected)}
        best = max(sorted(means), key=lambda c: means[c])
        expected.append(best if 1 - means[best] <= 0.5 else max(expected) + 1)
    assert got.tolist() == expected[100:]


def test_incremental_clustering_keeps_clusters_and_places_new_phrases(tmp_path):
    factors, stories = make_inputs()
    memo = tmp_path / "memo"
    first = cluster_factors(factors, stories, threshold=0.75, memo_dir=memo)
    assert clusters_of(first) == clusters_of(cluster_factors(factors, stories, threshold=0.75))  # same as no memo
    # the same input again: the memo's tables, the same clusters and ids
    again = cluster_factors(factors, stories, threshold=0.75, memo_dir=memo)
    pd.testing.assert_frame_equal(again.clusters, first.clusters)
    # one story more: its phrase joins the cluster of the same factor, the other clusters stay
    more, stories2 = make_inputs(extra=[("h", "Twente", "succes", "vaste contactpersoon voor de werkgever")])
    grown = cluster_factors(more, stories2, threshold=0.75, memo_dir=memo)
    host = grown.members[grown.members.story_id == "h"].cluster_id.iloc[0]
    host_phrases = set(grown.members[grown.members.cluster_id == host].phrase)
    assert "vaste contactpersoon bij de gemeente" in host_phrases
    untouched = set(first.clusters.cluster_id) & set(grown.clusters.cluster_id)
    assert len(untouched) == len(first.clusters) - 1  # only the cluster that gained a member changed its id
    # many new phrases: clustered from scratch, as without a memo
    many = [("x", "Zeeland", "succes", f"nieuw initiatief nummer {i} met de werkgever") for i in range(30)]
    big, stories3 = make_inputs(extra=many)
    assert clusters_of(cluster_factors(big, stories3, threshold=0.75, memo_dir=memo)) == \
        clusters_of(cluster_factors(big, stories3, threshold=0.75))


# --- the per-story memo ------------------------------------------------------------------------------

def test_memo_computes_only_new_or_changed_stories(tmp_path):
    calls = []

    def compute(sub):
        calls.append(sorted(sub["story_id"]))
        rows = [{"story_id": s, "value": f"{s}-{h}"} for s, h in zip(sub["story_id"], sub["content_hash"]) if s != "c"]
        return pd.DataFrame(rows, columns=["story_id", "value"])

    stories = pd.DataFrame({"story_id": ["a", "b", "c"], "content_hash": ["h1", "h2", "h3"]})
    first = memoized(stories, compute, tmp_path, "stage", "fp1")
    assert first["value"].tolist() == ["a-h1", "b-h2"] and calls == [["a", "b", "c"]]
    assert known_hashes(tmp_path, "stage", "fp1") == {"h1", "h2", "h3"}  # c had no rows: remembered too
    # b renamed, d new, c unchanged (no rows): only d is computed; b's rows come back under its new id
    stories2 = pd.DataFrame({"story_id": ["a", "b2", "c", "d"], "content_hash": ["h1", "h2", "h3", "h4"]})
    second = memoized(stories2, compute, tmp_path, "stage", "fp1")
    assert calls[-1] == ["d"]
    assert second["story_id"].tolist() == ["a", "b2", "d"] and second["value"].tolist() == ["a-h1", "b-h2", "d-h4"]
    memoized(stories2, compute, tmp_path, "stage", "fp2")  # another model: everything again
    assert calls[-1] == ["a", "b2", "c", "d"]
    none = memoized(stories2.iloc[0:0], compute, tmp_path, "stage", "fp3")  # no stories, no memo yet
    assert none.empty and list(none.columns) == ["story_id", "value"]


# --- ingest cache ------------------------------------------------------------------------------------

OTHER_BODY = ("Op het mbo in de regio leren jongeren het vak in de praktijk bij een leerbedrijf. De school en de "
              "werkgevers maken samen het programma, en een praktijkopleider begeleidt elke leerling op de "
              "werkvloer. Het lastige is dat kleine bedrijven weinig tijd hebben om een leerling te begeleiden, "
              "en dat de regels voor de subsidie elk jaar veranderen. Toch willen ze graag doorgaan met het project.")

def test_ingest_reads_only_new_or_changed_files(story_dir, settings, monkeypatch):
    settings = settings.replace(cache_dir=story_dir.parent / "cache")
    (story_dir / "a.md").write_text(md_story("a"), encoding="utf-8")
    (story_dir / "b.md").write_text(md_story("b", body=OTHER_BODY, region="Nergensland"), encoding="utf-8")
    first = ingest_module.ingest(settings, echo=None)
    read = []
    original = ingest_module._read_and_validate
    monkeypatch.setattr(ingest_module, "_read_and_validate", lambda path, *a: read.append(path.name) or original(path, *a))
    second = ingest_module.ingest(settings, echo=None)
    assert read == []
    pd.testing.assert_frame_equal(first.stories, second.stories)
    pd.testing.assert_frame_equal(first.report, second.report)  # problems are reported again from the cache
    assert second.report["problem"].str.contains("unknown region").any()
    (story_dir / "b.md").write_text(md_story("b", body=OTHER_BODY, region="Zeeland"), encoding="utf-8")
    (story_dir / "c.md").write_text(md_story("c", body=md_story("x").split("---")[-1] + " Nog een zin erbij."),
                                    encoding="utf-8")
    third = ingest_module.ingest(settings, echo=None)
    assert sorted(read) == ["b.md", "c.md"]
    assert third.stories.set_index("story_id").loc["b", "region"] == "Zeeland"
    assert third.report["problem"].str.contains("near-duplicate").any()  # c vs a, found with cached signatures


# --- parse segments -----------------------------------------------------------------------------------

def test_sentence_store_reads_and_compacts(tmp_path):
    store = SentenceStore(tmp_path, max_segments=2)
    for i in range(3):
        store.write([pd.DataFrame({"story_id": [f"s{i}"] * 2, "sentence_index": [0, 1], "text": ["x", "y"],
                                   "content_hash": [f"h{i}"] * 2})])
    assert len(store.segments()) == 3
    index = store.index()
    assert set(index) == {"h0", "h1", "h2"}
    got = store.read({"h0", "h2"}, index)
    assert sorted(set(got["content_hash"])) == ["h0", "h2"] and len(got) == 4
    store.compact()
    assert len(store.segments()) == 1 and set(store.index()) == {"h0", "h1", "h2"}


def test_sentence_store_compaction_leaves_large_segments_alone(tmp_path):
    store = SentenceStore(tmp_path, max_segments=3)
    big = store.write([pd.DataFrame({"story_id": [f"b{i}" for i in range(2000)], "sentence_index": 0,
                                     "text": [f"zin nummer {i} met wat tekst" for i in range(2000)],
                                     "content_hash": [f"hb{i}" for i in range(2000)]})])
    for i in range(3):
        store.write([pd.DataFrame({"story_id": [f"s{i}"], "sentence_index": [0], "text": ["x"],
                                   "content_hash": [f"h{i}"]})])
    big_bytes = big.read_bytes()
    store.compact()
    assert len(store.segments()) == 2 and big.read_bytes() == big_bytes  # the three small ones merged
    assert set(store.index()) == {"h0", "h1", "h2"} | {f"hb{i}" for i in range(2000)}


# --- writers --------------------------------------------------------------------------------------------

def test_csv_round_trip_with_hostile_text(tmp_path):
    df = pd.DataFrame({"id": ["a", "b"], "text": ['komma, "aanhalingstekens"\nen een regel', "=SOM(A1)"],
                       "n": [1, 2], "p": [0.5, np.nan], "ok": [True, False],
                       "date": pd.to_datetime(["2024-03-01", None])})
    path = write_csv(tmp_path / "t.csv", df)
    back = pd.read_csv(path, keep_default_na=False)
    assert back["text"].tolist() == df["text"].tolist()
    assert back["date"].tolist() == ["2024-03-01", ""] and back["ok"].tolist() == [True, False]


def _clustered():
    factors, stories = make_inputs()
    result = cluster_factors(factors, stories, threshold=0.75)
    themes = pd.DataFrame({"story_id": stories["story_id"], "themes": "praktijkleren", "main_theme": "praktijkleren",
                           "flag": ""})
    return result, stories, themes


def test_review_sheet_keeps_text_as_text_and_lists_the_top(tmp_path):
    result, stories, themes = _clustered()
    members = result.members.copy()
    members.loc[members.index[0], "sentence"] = "=HYPERLINK(\"http://example.com\",\"klik\")"
    top1 = review_tables(result.clusters, members, stories, themes, top=1)
    assert set(top1["clusters"]["rank"]) == {1}  # one per theme and polarity
    tables = review_tables(result.clusters, members, stories, themes)
    write_review(tables, tmp_path)
    ws = openpyxl.load_workbook(tmp_path / "review.xlsx")["clusters"]
    header = [c.value for c in ws[1]]
    quotes = [row[header.index("citaat")] for row in ws.iter_rows(min_row=2, values_only=True)]
    assert "=HYPERLINK(\"http://example.com\",\"klik\")" in quotes  # stored as text, not as a formula
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)


def test_member_list_fits_an_excel_cell():
    n = 4000
    members = pd.DataFrame({"cluster_id": "c1", "story_id": [f"verhaal-{i:05d}" for i in range(n)],
                            "start": range(n), "end": range(1, n + 1)})
    leden = member_lists(members)["c1"]
    assert len(leden) <= MAX_CELL_CHARS and leden.split(";")[0] == "verhaal-00000:0-1"
    assert all(k.count(":") == 1 and "-" in k.split(":")[1] for k in leden.split(";"))  # whole keys only


def test_draft_json_is_valid_for_any_size():
    members = [{"story_id": f"s{i}", "sentence": "“citaat” é", "start": 0, "end": 1, "phrase": "x"} for i in range(6000)]
    draft = {"schema_version": 2, "themes": [{"key": "t", "items": [{"members": members, "n": np.int64(3),
                                                                    "first_date": pd.Timestamp("2024-03-01")}]}]}
    back = json.loads(render_json(draft))
    assert back["themes"][0]["items"][0]["members"] == members and back["themes"][0]["items"][0]["n"] == 3
    assert back["themes"][0]["items"][0]["first_date"].startswith("2024-03-01")
    assert "\n  " in render_json({"schema_version": 2, "themes": []})  # indented for reading


def test_theme_groups_lists_each_factor_under_each_theme_of_its_story():
    from pipeline.cluster import theme_groups

    factors = pd.DataFrame({"themes": ["b;a", "", "a", None, "a;;c"],
                            "polarity": ["succes", "succes", "knelpunt", "succes", "succes"]})
    groups = theme_groups(factors)
    assert list(groups) == [("a", "knelpunt"), ("a", "succes"), ("b", "succes"), ("c", "succes")]
    assert groups[("a", "succes")].tolist() == [0, 4] and groups[("a", "knelpunt")].tolist() == [2]
    assert groups[("b", "succes")].tolist() == [0] and groups[("c", "succes")].tolist() == [4]
    assert theme_groups(factors.iloc[[1, 3]]) == {}


def test_fewer_gc_passes_restores_the_collector_thresholds():
    import gc

    from pipeline.run import fewer_gc_passes

    before = gc.get_threshold()
    with fewer_gc_passes(50_000):
        assert gc.get_threshold()[0] == max(50_000, before[0])
    assert gc.get_threshold() == before
