"""Stage 4: group the condensed factor phrases across stories, per theme and polarity.

Representation (`PhraseVectorizer`): lemma TF-IDF (uni- and bigrams, Dutch stop words out) +
character n-grams (Dutch compounds) + the domain concept lexicon (pipeline/data/concepts.yaml),
each block L2-normalised and weighted, the whole row L2-normalised (cosine geometry).

Clustering: average-linkage agglomerative clustering with a cosine distance threshold (no fixed
number of clusters). Every factor ends up in a cluster; a factor named by one story only is a
cluster of one. Groups larger than `max_exact` are clustered along a k-nearest-neighbour graph of
an SVD projection (deterministic), which avoids the quadratic distance matrix.

Each cluster gets a stable id (a hash of its members' story ids and offsets: the same members
give the same id on every run), a label (its most central phrase), keywords and support.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import yaml
from sklearn.cluster import AgglomerativeClustering
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from .settings import DATA_DIR

CLUSTER_COLUMNS = ["cluster_id", "theme", "polarity", "label", "keywords", "n_members", "n_stories", "n_regions",
                   "regions", "first_date", "last_date", "story_ids"]
MEMBER_COLUMNS = ["cluster_id", "theme", "polarity", "story_id", "sentence_index", "start", "end", "phrase",
                  "sentence", "centrality"]


@lru_cache(maxsize=1)
def dutch_stop_words() -> frozenset[str]:
    from spacy.lang.nl.stop_words import STOP_WORDS

    extra = {"heel", "echt", "even", "gewoon", "ook", "wel", "nog", "steeds", "vaak", "soms", "zo", "dan", "zegt",
             "zeggen", "gaan", "komen", "maken", "worden", "hebben", "zijn", "kunnen", "moeten", "willen", "we",
             "je", "ze", "er", "daar", "hier", "dat", "die", "dit", "deze", "één", "twee", "drie"}
    return frozenset({w.lower() for w in STOP_WORDS} | extra)


@dataclass(frozen=True)
class Concept:
    id: str
    label: str
    pattern: re.Pattern


@lru_cache(maxsize=4)
def load_concepts(path: Path = DATA_DIR / "concepts.yaml") -> tuple[Concept, ...]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    out = []
    for c in data["concepts"]:
        parts = []
        for term in c["terms"]:
            t = term.lower().strip()
            body = re.escape(t.rstrip("*")).replace(r"\ ", r"\s+") + (r"\w*" if t.endswith("*") else "")
            parts.append(body)
        out.append(Concept(c["id"], c.get("label", c["id"]), re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)")))
    return tuple(out)


def concept_matrix(texts, concepts) -> sp.csr_matrix:
    rows, cols = [], []
    for i, t in enumerate(texts):
        low = t.lower()
        for j, c in enumerate(concepts):
            if c.pattern.search(low):
                rows.append(i)
                cols.append(j)
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(texts), len(concepts)))


@dataclass
class PhraseVectorizer:
    """Phrase (text + lemmas) -> L2-normalised sparse vector. fit/transform like scikit-learn."""

    w_lemma: float = 1.0
    w_char: float = 0.6
    w_concept: float = 0.8
    concepts_path: Path = DATA_DIR / "concepts.yaml"

    lemma_vectorizer_: TfidfVectorizer | None = field(default=None, repr=False)
    char_vectorizer_: TfidfVectorizer | None = field(default=None, repr=False)
    concepts_: tuple | None = field(default=None, repr=False)

    def _lemma_text(self, lemmas) -> list[str]:
        stop = dutch_stop_words()
        return [" ".join(w for w in str(l).lower().split() if w not in stop and len(w) > 1) for l in lemmas]

    def fit(self, texts, lemmas) -> "PhraseVectorizer":
        lt = self._lemma_text(lemmas)
        self.lemma_vectorizer_ = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True,
                                                 token_pattern=r"(?u)\b\w[\w-]+\b")
        self.char_vectorizer_ = TfidfVectorizer(analyzer="char_wb", ngram_range=(4, 5), min_df=1, sublinear_tf=True)
        if any(t.strip() for t in lt):
            self.lemma_vectorizer_.fit(lt)
        else:
            self.lemma_vectorizer_.fit(["leeg"])
        self.char_vectorizer_.fit([" ".join(x) for x in zip([str(t).lower() for t in texts], lt)])
        self.concepts_ = load_concepts(Path(self.concepts_path))
        return self

    def transform(self, texts, lemmas) -> sp.csr_matrix:
        lt = self._lemma_text(lemmas)
        low = [str(t).lower() for t in texts]
        blocks = [
            normalize(self.lemma_vectorizer_.transform(lt)) * self.w_lemma,
            normalize(self.char_vectorizer_.transform([" ".join(x) for x in zip(low, lt)])) * self.w_char,
        ]
        if self.concepts_:
            blocks.append(normalize(concept_matrix([f"{a} {b}" for a, b in zip(low, lt)], self.concepts_)) * self.w_concept)
        return normalize(sp.hstack(blocks).tocsr())

    def fit_transform(self, texts, lemmas) -> sp.csr_matrix:
        return self.fit(texts, lemmas).transform(texts, lemmas)


def cluster_vectors(X: sp.csr_matrix, threshold: float, max_exact: int = 2500) -> np.ndarray:
    """Cluster labels (0..k-1, numbered by first member) for the rows of X (cosine distance)."""
    n = X.shape[0]
    if n == 0:
        return np.zeros(0, dtype=int)
    if n == 1:
        return np.zeros(1, dtype=int)
    if n <= max_exact:
        # rows are L2-normalised (or empty): cosine distance = 1 - dot product; an empty row is
        # at distance 1 from everything and so stays on its own
        D = 1.0 - (X @ X.T).toarray()
        np.clip(D, 0.0, 2.0, out=D)
        np.fill_diagonal(D, 0.0)
        model = AgglomerativeClustering(n_clusters=None, metric="precomputed", linkage="average",
                                        distance_threshold=threshold)
        raw = model.fit_predict(D)
    else:
        raw = _neighbour_clusters(X, threshold)
    # renumber by first appearance so labels do not depend on the algorithm's numbering
    mapping: dict[int, int] = {}
    return np.array([mapping.setdefault(int(r), len(mapping)) for r in raw])


def _neighbour_clusters(X: sp.csr_matrix, threshold: float, n_neighbors: int = 15, dims: int = 128,
                        seed: int = 0) -> np.ndarray:
    """Average linkage restricted to a k-nearest-neighbour graph, on an SVD projection of X:
    memory and time grow with n * k instead of n * n (for very large groups)."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.neighbors import kneighbors_graph

    n_components = max(2, min(dims, X.shape[1] - 1, X.shape[0] - 1))
    Z = TruncatedSVD(n_components=n_components, random_state=seed).fit_transform(X)
    norms = np.linalg.norm(Z, axis=1)
    ok = np.flatnonzero(norms > 1e-9)  # an empty phrase has no direction: it stays on its own
    labels = np.arange(X.shape[0]) + X.shape[0]
    if len(ok) >= 2:
        Zok = Z[ok] / norms[ok, None]
        graph = kneighbors_graph(Zok, n_neighbors=min(n_neighbors, len(ok) - 1), metric="cosine", include_self=False)
        model = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                        distance_threshold=threshold, connectivity=graph)
        labels[ok] = model.fit_predict(Zok)
    return labels


def cluster_id(story_ids, starts, ends) -> str:
    """'c' + a hash of the members' story ids and offsets: the same members give the same id."""
    keys = sorted(f"{s}:{int(a)}:{int(b)}" for s, a, b in zip(story_ids, starts, ends))
    return "c" + hashlib.sha1("\n".join(keys).encode()).hexdigest()[:10]


def stable_cluster_id(members: pd.DataFrame) -> str:
    """The cluster id of a members table (see `cluster_id`)."""
    return cluster_id(members["story_id"], members["start"], members["end"])


def _keywords(X_lemma: sp.csr_matrix, names: np.ndarray, idx: np.ndarray, top: int = 5) -> list[str]:
    if X_lemma.shape[1] == 0 or len(idx) == 0:
        return []
    weights = np.asarray(X_lemma[idx].sum(axis=0)).ravel()
    order = np.argsort(-weights, kind="stable")
    return [names[k] for k in order[:top] if weights[k] > 0 and " " not in names[k]][:top]


@dataclass
class ClusterResult:
    clusters: pd.DataFrame
    members: pd.DataFrame


def assign_themes(factors: pd.DataFrame) -> pd.DataFrame:
    """One row per (factor, theme of its story); factors of stories without themes are dropped."""
    f = factors.copy()
    f["theme"] = f["themes"].fillna("").astype(str).str.split(";")
    f = f.explode("theme")
    return f[f["theme"].astype(str) != ""].reset_index(drop=True)


def cluster_factors(factors: pd.DataFrame, stories: pd.DataFrame, threshold: float = 0.6,
                    vectorizer: PhraseVectorizer | None = None, max_exact: int = 2500) -> ClusterResult:
    """Cluster factors (with columns story_id, start, end, polarity, phrase, phrase_lemmas,
    sentence, themes) per theme and polarity; `stories` gives region and date for support."""
    per_theme = assign_themes(factors)
    region_of = dict(zip(stories["story_id"], stories["region"].fillna("")))
    date_of = dict(zip(stories["story_id"], stories["date"]))
    cluster_rows, member_rows = [], []
    for (theme, polarity), group in per_theme.groupby(["theme", "polarity"], sort=True):
        group = group.sort_values(["story_id", "start", "end"], kind="stable").reset_index(drop=True)
        vec = PhraseVectorizer() if vectorizer is None else PhraseVectorizer(vectorizer.w_lemma, vectorizer.w_char,
                                                                              vectorizer.w_concept, vectorizer.concepts_path)
        X = vec.fit_transform(group["phrase"], group["phrase_lemmas"])
        labels = cluster_vectors(X, threshold, max_exact=max_exact)
        X_lemma = vec.lemma_vectorizer_.transform(vec._lemma_text(group["phrase_lemmas"]))
        names = vec.lemma_vectorizer_.get_feature_names_out()
        sids = group["story_id"].tolist()
        phrases = group["phrase"].tolist()
        starts, ends = group["start"].astype(int).tolist(), group["end"].astype(int).tolist()
        sent_idx = group["sentence_index"].fillna(-1).astype(int).tolist() if "sentence_index" in group else [-1] * len(group)
        sentences = group["sentence"].fillna("").tolist() if "sentence" in group else [""] * len(group)
        order_all = np.argsort(labels, kind="stable")
        bounds = np.flatnonzero(np.diff(labels[order_all])) + 1
        for idx in np.split(order_all, bounds) if len(order_all) else []:
            if len(idx) > 1:
                sims = (X[idx] @ X[idx].T).toarray()
                centrality = sims.mean(axis=1)
            else:
                centrality = np.ones(1)
            order = sorted(range(len(idx)), key=lambda i: (-round(float(centrality[i]), 6), len(phrases[idx[i]]),
                                                           sids[idx[i]], starts[idx[i]]))
            cid = cluster_id([sids[i] for i in idx], [starts[i] for i in idx], [ends[i] for i in idx])
            story_set = sorted({sids[i] for i in idx})
            regions = sorted({region_of.get(x, "") for x in story_set} - {""})
            dates = [date_of.get(x) for x in story_set if pd.notna(date_of.get(x))]
            cluster_rows.append({
                "cluster_id": cid, "theme": theme, "polarity": polarity,
                "label": phrases[idx[order[0]]],
                "keywords": ", ".join(_keywords(X_lemma, names, idx)),
                "n_members": len(idx), "n_stories": len(story_set), "n_regions": len(regions),
                "regions": "; ".join(regions),
                "first_date": min(dates) if dates else pd.NaT, "last_date": max(dates) if dates else pd.NaT,
                "story_ids": ";".join(story_set),
            })
            for i in order:
                k = idx[i]
                member_rows.append((cid, theme, polarity, sids[k], sent_idx[k], starts[k], ends[k], phrases[k],
                                    sentences[k], round(float(centrality[i]), 4)))
    clusters = pd.DataFrame(cluster_rows, columns=CLUSTER_COLUMNS)
    members = pd.DataFrame(member_rows, columns=MEMBER_COLUMNS)
    return ClusterResult(clusters, members)
