"""Stage 4: group the condensed factor phrases across stories, per theme and polarity.

Representation (`PhraseVectorizer`): lemma TF-IDF (uni- and bigrams, Dutch stop words out) +
character n-grams (Dutch compounds) + the domain concept lexicon (pipeline/data/concepts.yaml),
each block L2-normalised and weighted, the whole row L2-normalised (cosine geometry).

Clustering: average-linkage agglomerative clustering with a cosine distance threshold (no fixed
number of clusters). Every factor ends up in a cluster; a factor named by one story only is a
cluster of one. Groups larger than `max_exact` are first split into blocks of similar phrases
(k-means on an SVD projection, deterministic), each clustered exactly, which avoids the quadratic
distance matrix. With a memo folder, a re-run that adds a few phrases to a group assigns them to
the existing clusters instead of clustering the group again (see `cluster_factors`).

Each cluster gets a stable id (a hash of its members' story ids and offsets: the same members
give the same id on every run), a label (its most central phrase), keywords and support.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from .features import CharNgramVectorizer
from .settings import DATA_DIR, read_yaml

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
    terms: tuple[str, ...]  # lower case; a trailing * matches any continuation
    pattern: re.Pattern  # all terms as one regular expression (whole words)


@lru_cache(maxsize=4)
def load_concepts(path: Path = DATA_DIR / "concepts.yaml") -> tuple[Concept, ...]:
    data = read_yaml(path)
    out = []
    for c in data["concepts"]:
        terms = tuple(str(t).lower().strip() for t in c["terms"])
        # "*" matches any continuation of a word, at the end of a term or inside it ("werkgever* betrekken")
        parts = [r"\w*".join(re.escape(piece) for piece in t.rstrip("*").split("*")).replace(r"\ ", r"\s+")
                 + (r"\w*" if t.endswith("*") else "") for t in terms]
        out.append(Concept(c["id"], c.get("label", c["id"]), terms,
                           re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)")))
    return tuple(out)


_WORD = re.compile(r"\w+")


@lru_cache(maxsize=4)
def _concept_index(concepts: tuple[Concept, ...]):
    """Lookup tables for `concept_matrix`: whole words, word prefixes (terms ending in *), and
    the first word of every other term (such a term is then checked with its concept's pattern)."""
    exact: dict[str, set[int]] = {}
    prefix: dict[str, set[int]] = {}
    trigger: dict[str, set[int]] = {}
    for j, c in enumerate(concepts):
        for t in c.terms:
            stem = t.rstrip("*")
            if _WORD.fullmatch(stem):
                (prefix if t.endswith("*") else exact).setdefault(stem, set()).add(j)
            else:  # checked with the pattern when its first word occurs (always, if that word has a *)
                first = _WORD.match(stem)
                word = first.group(0) if first and not stem[first.end():].startswith("*") else ""
                trigger.setdefault(word, set()).add(j)
    return exact, prefix, trigger, max((len(k) for k in prefix), default=0)


def concept_matrix(texts, concepts) -> sp.csr_matrix:
    """(len(texts), len(concepts)) 0/1 matrix: which concepts each text mentions (any term, as
    whole words). Word lookups in dictionaries; a multi-word term's pattern only runs on texts
    holding its first word."""
    exact, prefix, trigger, longest = _concept_index(tuple(concepts))
    rows, cols = [], []
    for i, text in enumerate(texts):
        low = str(text).lower()
        found: set[int] = set()
        check: set[int] = set(trigger.get("", ()))
        for w in set(_WORD.findall(low)):
            found |= exact.get(w, set())
            for n in range(1, min(len(w), longest) + 1):
                hit = prefix.get(w[:n])
                if hit:
                    found |= hit
            check |= trigger.get(w, set())
        for j in check - found:
            if concepts[j].pattern.search(low):
                found.add(j)
        rows += [i] * len(found)
        cols += sorted(found)
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(texts), len(concepts)))


@dataclass
class PhraseVectorizer:
    """Phrase (text + lemmas) -> L2-normalised sparse vector. fit/transform like scikit-learn."""

    w_lemma: float = 1.0
    w_char: float = 0.6
    w_concept: float = 0.8
    w_reference: float = 8.0  # the known-factor scores (`extra`, see references.py), when given
    concepts_path: Path = DATA_DIR / "concepts.yaml"

    lemma_vectorizer_: TfidfVectorizer | None = field(default=None, repr=False)
    char_vectorizer_: CharNgramVectorizer | None = field(default=None, repr=False)
    concepts_: tuple | None = field(default=None, repr=False)

    def _lemma_text(self, lemmas) -> list[str]:
        stop = dutch_stop_words()
        return [" ".join(w for w in str(l).lower().split() if w not in stop and len(w) > 1) for l in lemmas]

    def fit(self, texts, lemmas) -> "PhraseVectorizer":
        self.fit_transform(texts, lemmas)
        return self

    def fit_transform(self, texts, lemmas, extra: np.ndarray | None = None) -> sp.csr_matrix:
        lt = self._lemma_text(lemmas)
        self.lemma_vectorizer_ = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True,
                                                 token_pattern=r"(?u)\b\w[\w-]+\b")
        self.char_vectorizer_ = CharNgramVectorizer((4, 5), min_df=1)
        self.lemma_vectorizer_.fit(lt if any(t.strip() for t in lt) else ["leeg"])
        self.concepts_ = load_concepts(Path(self.concepts_path))
        return self._combine(texts, lt, fit=True, extra=extra)

    def transform(self, texts, lemmas, extra: np.ndarray | None = None) -> sp.csr_matrix:
        """`extra`: optional dense scores per row (the known-factor scores), appended unnormalised
        with weight w_reference, so a confident score weighs more than a vague one."""
        return self._combine(texts, self._lemma_text(lemmas), fit=False, extra=extra)

    def _combine(self, texts, lt: list[str], fit: bool, extra: np.ndarray | None = None) -> sp.csr_matrix:
        low = [str(t).lower() for t in texts]
        both = [" ".join(x) for x in zip(low, lt)]
        chars = self.char_vectorizer_.fit_transform(both) if fit else self.char_vectorizer_.transform(both)
        blocks = [normalize(self.lemma_vectorizer_.transform(lt)) * self.w_lemma, chars * self.w_char]
        if self.concepts_:
            blocks.append(normalize(concept_matrix(both, self.concepts_)) * self.w_concept)
        if extra is not None and np.asarray(extra).shape[1]:
            blocks.append(sp.csr_matrix(np.asarray(extra, dtype=float)) * self.w_reference)
        return normalize(sp.hstack(blocks).tocsr())


def cluster_vectors(X: sp.csr_matrix, threshold: float, max_exact: int = 2500, seed: int = 0) -> np.ndarray:
    """Cluster labels (0..k-1, numbered by first member) for the rows of X (cosine distance).

    Up to `max_exact` rows: exact average linkage, cut at `threshold`. Larger groups are first
    split into blocks of at most `max_exact` rows by k-means on a small SVD projection (similar
    phrases share a block), and each block is clustered exactly: time and memory grow with
    n * max_exact instead of n * n.
    """
    n = X.shape[0]
    if n <= 1:
        return np.zeros(n, dtype=int)
    if n <= max_exact:
        raw = _average_linkage(X, threshold)
    else:
        raw = np.empty(n, dtype=np.int64)
        offset = 0
        for idx in _blocks(X, max_exact, seed):
            labels = _average_linkage(X[idx], threshold)
            raw[idx] = labels + offset
            offset += int(labels.max()) + 1
    return _renumber(raw)


def _renumber(raw: np.ndarray) -> np.ndarray:
    """Labels 0..k-1 numbered by first appearance, so they do not depend on the algorithm's numbering."""
    _, first, inverse = np.unique(raw, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=int)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse.ravel()]


def _average_linkage(X: sp.csr_matrix, threshold: float) -> np.ndarray:
    """Exact average-linkage clustering of the rows of X, cut at cosine distance `threshold`.
    Rows are L2-normalised (or empty): cosine distance = 1 - dot product; an empty row is at
    distance 1 from everything and so stays on its own."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    n = X.shape[0]
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    D = (X @ X.T).toarray()
    np.subtract(1.0, D, out=D)
    np.clip(D, 0.0, 2.0, out=D)
    np.fill_diagonal(D, 0.0)
    D = np.maximum(D, D.T)  # exact symmetry against rounding
    Z = linkage(squareform(D, checks=False), method="average")
    return fcluster(Z, t=threshold, criterion="distance").astype(np.int64) - 1


def _blocks(X: sp.csr_matrix, size: int, seed: int = 0, dims: int = 32) -> list[np.ndarray]:
    """Row indices of X split into blocks of at most `size` rows of similar phrases
    (k-means on an SVD projection, recursively until every block fits; deterministic)."""
    import warnings

    from sklearn.cluster import KMeans
    from sklearn.decomposition import TruncatedSVD
    from sklearn.exceptions import ConvergenceWarning

    def split(idx: np.ndarray) -> list[np.ndarray]:
        if len(idx) <= size:
            return [idx]
        sub = X[idx]
        k = min(len(idx), int(np.ceil(2 * len(idx) / size)))
        n_components = max(1, min(dims, sub.shape[1] - 1, len(idx) - 1))
        Z = TruncatedSVD(n_components=n_components, n_iter=2, random_state=seed).fit_transform(sub)
        Z = normalize(Z)
        with warnings.catch_warnings():  # duplicate phrases can leave fewer distinct points than k
            warnings.simplefilter("ignore", ConvergenceWarning)
            parts = KMeans(n_clusters=k, n_init=1, random_state=seed, max_iter=50).fit_predict(Z)
        groups = [idx[parts == c] for c in range(k) if np.any(parts == c)]
        if len(groups) == 1:  # no split possible (identical rows): cut in order
            groups = [idx[i:i + size] for i in range(0, len(idx), size)]
        return [b for g in groups for b in split(g)]

    return split(np.arange(X.shape[0]))


def assign_to_clusters(X_old: sp.csr_matrix, labels: np.ndarray, X_new: sp.csr_matrix, threshold: float) -> np.ndarray:
    """Labels for new rows, given a clustering of X_old: each new row joins the cluster with the
    highest average similarity if its average distance is within `threshold` (the average-linkage
    criterion), else starts a new cluster. Rows are taken in order, each seeing the earlier ones."""
    labels = np.asarray(labels, dtype=np.int64)
    X_new = sp.csr_matrix(X_new)
    X = sp.vstack([X_old, X_new]).tocsr()
    n_old = X_old.shape[0]
    out = np.concatenate([labels, np.zeros(X_new.shape[0], dtype=np.int64)])
    next_label = int(labels.max()) + 1 if len(labels) else 0
    empty = np.diff(X_new.indptr) == 0
    chunk = 256  # new rows whose similarities to every row are computed in one product (bounded memory)
    for i in range(X_new.shape[0]):
        if i % chunk == 0:
            sims_new = (X @ X_new[i:i + chunk].T).toarray()
        row = n_old + i
        if row == 0 or empty[i]:
            out[row], next_label = next_label, next_label + 1
            continue
        sims = sims_new[:row, i % chunk]
        sums = np.bincount(out[:row], weights=sims, minlength=next_label)
        counts = np.bincount(out[:row], minlength=next_label)
        mean = np.where(counts > 0, sums / np.maximum(counts, 1), -np.inf)
        best = int(np.argmax(mean))
        if 1.0 - mean[best] <= threshold:
            out[row] = best
        else:
            out[row], next_label = next_label, next_label + 1
    return out[n_old:]


def cluster_id(story_ids, starts, ends) -> str:
    """'c' + a hash of the members' story ids and offsets: the same members give the same id."""
    keys = sorted(f"{s}:{int(a)}:{int(b)}" for s, a, b in zip(story_ids, starts, ends))
    return "c" + hashlib.sha1("\n".join(keys).encode()).hexdigest()[:10]


def stable_cluster_id(members: pd.DataFrame) -> str:
    """The cluster id of a members table (see `cluster_id`)."""
    return cluster_id(members["story_id"], members["start"], members["end"])


def _keywords(sums: sp.csr_matrix, names: np.ndarray, top: int = 5) -> list[list[str]]:
    """Per row of `sums` (summed lemma tf-idf of a cluster's members): its top single-word lemmas."""
    out = []
    single = np.array([" " not in n for n in names], dtype=bool)
    for r in range(sums.shape[0]):
        lo, hi = sums.indptr[r], sums.indptr[r + 1]
        cols, vals = sums.indices[lo:hi], sums.data[lo:hi]
        ok = (vals > 0) & single[cols]
        cols, vals = cols[ok], vals[ok]
        order = np.lexsort((cols, -vals))[:top]
        out.append([names[c] for c in cols[order]])
    return out


@dataclass
class ClusterResult:
    clusters: pd.DataFrame
    members: pd.DataFrame


def theme_groups(factors: pd.DataFrame) -> dict[tuple[str, str], np.ndarray]:
    """Row positions of `factors` per (theme, polarity), for each theme of a factor's story (a
    factor of a story with two themes is in two groups; one without themes is in none). Sorted
    by key; positions in row order. Nothing is copied: a group is `factors.take(positions)`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not len(factors):
        return {}
    # split and number the themes in Arrow (no Python loop over rows), then combine the integer
    # codes of theme and polarity
    lists = pc.split_pattern(pa.array(factors["themes"].fillna("").astype(str).to_numpy(dtype=object)), ";")
    rows = pc.list_parent_indices(lists).to_numpy()
    encoded = pc.dictionary_encode(pc.list_flatten(lists))
    theme_codes, theme_names = encoded.indices.to_numpy(), encoded.dictionary.to_pylist()
    pol_codes, pol_names = pd.factorize(factors["polarity"].astype(str))
    code = theme_codes.astype(np.int64) * len(pol_names) + pol_codes[rows]
    order = np.argsort(code, kind="stable")
    groups = {}
    for idx in np.split(order, np.flatnonzero(np.diff(code[order])) + 1):
        theme, polarity = theme_names[code[idx[0]] // len(pol_names)], pol_names[code[idx[0]] % len(pol_names)]
        if theme:  # an empty entry ("a;;b") is no theme
            groups[(str(theme), str(polarity))] = rows[idx]
    return dict(sorted(groups.items()))


def phrase_keys(group: pd.DataFrame) -> list[str]:
    """Each member's key in the clustering memo: story, offsets and phrase (a changed phrase is a
    new member). Built column-wise."""
    if not len(group):
        return []
    key = (group["story_id"].astype(str) + ":" + group["start"].astype(int).astype(str) + ":"
           + group["end"].astype(int).astype(str) + ":" + group["phrase"].fillna("").astype(str))
    return key.tolist()


@dataclass
class _GroupClustering:
    """One theme/polarity group: its labels and vectors, and its finished tables when they could
    be reused from the memo unchanged."""

    labels: np.ndarray | None  # None when the tables were reused
    X: sp.csr_matrix | None
    X_lemma: sp.csr_matrix | None
    names: np.ndarray | None
    vectorizer: PhraseVectorizer | None = None  # set when the memo must be (re)written
    tables: tuple[pd.DataFrame, pd.DataFrame] | None = None


def _group_clustering(group: pd.DataFrame, keys: list[str], threshold: float, vectorizer: PhraseVectorizer | None,
                      max_exact: int, memo: Path | None, extra=None) -> _GroupClustering:
    """Cluster one theme/polarity group (rows sorted as given; `keys` from `phrase_keys`).

    With a memo of an earlier run of the same group: the same phrases give back the memo's
    clusters and tables; when the group only gained a few phrases (at most 5%, or 20) the memo's
    clusters are kept (minus phrases that are gone) and the new phrases are assigned to them
    (`assign_to_clusters`); otherwise, or without a memo, the group is clustered from scratch.
    `extra(rows)`: optional known-factor scores of some of the group's rows (see references.py).
    """
    scores = extra if extra is not None else (lambda rows: None)
    head = _load_memo(memo) if memo is not None else None  # keys and tables (small)
    if head is not None:
        old_index = {k: i for i, k in enumerate(head["keys"])}
        known = np.array([k in old_index for k in keys], dtype=bool)
        n_new = int((~known).sum())
        if n_new == 0 and len(keys) == len(head["keys"]) and head.get("tables") is not None:
            return _GroupClustering(None, None, None, None, tables=head["tables"])  # the same phrases as last time
        small_change = known.any() and n_new <= max(20, 0.05 * len(keys))
        state = _load_memo(memo.with_suffix(".vectors.pkl")) if small_change else None
        vec = _load_memo(memo.with_suffix(".vectorizer.pkl")) if state is not None else None
        if vec is not None:
            rows = np.array([old_index[k] for k, ok in zip(keys, known) if ok], dtype=np.int64)
            new = group[~known]
            X_new = vec.transform(new["phrase"], new["phrase_lemmas"], extra=scores(new))
            new_labels = assign_to_clusters(state["X"][rows], state["labels"][rows], X_new, threshold)
            # back to the group's order: known rows first in `rows`, then the new ones
            position = np.empty(len(keys), dtype=np.int64)
            position[np.concatenate([np.flatnonzero(known), np.flatnonzero(~known)])] = np.arange(len(keys))
            X = sp.vstack([state["X"][rows], X_new]).tocsr()[position]
            X_lemma = sp.vstack([state["X_lemma"][rows], vec.lemma_vectorizer_.transform(
                vec._lemma_text(new["phrase_lemmas"]))]).tocsr()[position]
            labels = _renumber(np.concatenate([state["labels"][rows], new_labels])[position])
            return _GroupClustering(labels, X, X_lemma, state["names"], vectorizer=vec)
    vec = PhraseVectorizer() if vectorizer is None else dataclasses.replace(vectorizer)  # a fresh one to fit
    X = vec.fit_transform(group["phrase"], group["phrase_lemmas"], extra=scores(group))
    labels = cluster_vectors(X, threshold, max_exact=max_exact)
    X_lemma = vec.lemma_vectorizer_.transform(vec._lemma_text(group["phrase_lemmas"]))
    return _GroupClustering(labels, X, X_lemma, vec.lemma_vectorizer_.get_feature_names_out(), vectorizer=vec)


def _load_memo(path: Path):
    import pickle

    try:
        return pickle.loads(path.read_bytes()) if path.exists() else None
    except Exception:  # a damaged memo is ignored and rewritten
        return None


def _save_memo(path: Path, keys: list[str], g: _GroupClustering) -> None:
    """The group's memo in three files: its keys and tables (read on every run), its vectors and
    labels (read when phrases were added) and its fitted vectorizer (read to place new phrases)."""
    import pickle

    from .outputs import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    vectors = {"labels": np.asarray(g.labels), "X": g.X, "X_lemma": g.X_lemma, "names": g.names}
    files = ((path.with_suffix(".vectorizer.pkl"), g.vectorizer), (path.with_suffix(".vectors.pkl"), vectors),
             (path, {"keys": keys, "tables": g.tables}))
    for target, data in files:
        with atomic_path(target) as tmp:
            Path(tmp).write_bytes(pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL))


def memo_fingerprint(threshold: float, vectorizer: PhraseVectorizer | None, max_exact: int,
                     references=None) -> str:
    """What a group's clustering depends on besides its phrases (for the memo's file name)."""
    v = vectorizer or PhraseVectorizer()
    h = hashlib.sha256(repr((threshold, v.w_lemma, v.w_char, v.w_concept, v.w_reference, max_exact,
                             getattr(references, "fingerprint_", None))).encode())
    h.update(Path(v.concepts_path).read_bytes())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()[:16]


def cluster_factors(factors: pd.DataFrame, stories: pd.DataFrame, threshold: float = 0.6,
                    vectorizer: PhraseVectorizer | None = None, max_exact: int = 2500,
                    memo_dir: Path | None = None, references=None) -> ClusterResult:
    """Cluster factors (with columns story_id, start, end, polarity, phrase, phrase_lemmas,
    sentence, themes) per theme and polarity; `stories` gives region and date for support.

    `memo_dir` (optional) keeps each group's clustering so that a re-run after adding a few
    stories assigns their phrases to the existing clusters (see `_group_clustering`); without it
    every group is clustered from scratch, and the same input always gives the same clusters.
    Regions and dates of the clusters come from `stories` (callers refresh them after verdicts;
    see review.refresh_support). `references` (optional, see references.py) adds the scores of
    the published factors each phrase may restate to its vector.
    """
    groups = theme_groups(factors)
    region_of = dict(zip(stories["story_id"].tolist(), stories["region"].fillna("").tolist()))
    date_of = dict(zip(stories["story_id"].tolist(), stories["date"]))
    fingerprint = memo_fingerprint(threshold, vectorizer, max_exact, references) if memo_dir is not None else ""
    cluster_frames, member_frames = [], []
    for (theme, polarity), rows in groups.items():
        group = factors.take(rows).assign(theme=theme)
        group = group.sort_values(["story_id", "start", "end"], kind="stable").reset_index(drop=True)
        keys = phrase_keys(group)
        memo = Path(memo_dir) / f"{fingerprint}-{theme}-{polarity}.pkl" if memo_dir is not None else None
        extra = None if references is None else (
            lambda rows, t=theme, p=polarity: references.group_scores(rows, t, p))
        g = _group_clustering(group, keys, threshold, vectorizer, max_exact, memo, extra)
        if g.tables is None:
            g.tables = _group_tables(group, g, theme, polarity, region_of, date_of)
            if memo is not None and g.vectorizer is not None:
                _save_memo(memo, keys, g)
        cluster_frames.append(g.tables[0])
        member_frames.append(g.tables[1])
    clusters = (pd.concat(cluster_frames, ignore_index=True) if cluster_frames
                else pd.DataFrame(columns=CLUSTER_COLUMNS))
    members = pd.concat(member_frames, ignore_index=True) if member_frames else pd.DataFrame(columns=MEMBER_COLUMNS)
    return ClusterResult(clusters[CLUSTER_COLUMNS], members[MEMBER_COLUMNS])


def _group_tables(group: pd.DataFrame, g: _GroupClustering, theme: str, polarity: str, region_of: dict,
                  date_of: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The clusters and members tables of one group, clusters in the order of their first member."""
    labels, X = g.labels, g.X
    n, k = len(group), int(labels.max()) + 1
    # cluster membership as a sparse indicator: sums per cluster without a loop per cluster
    member_of = sp.csr_matrix((np.ones(n), (labels, np.arange(n))), shape=(k, n))
    size = np.bincount(labels, minlength=k)
    sums = (member_of @ X).tocsr()
    # centrality = mean cosine similarity to the members of its cluster (itself included)
    centrality = np.asarray(X.multiply(sums[labels]).sum(axis=1)).ravel() / size[labels]
    centrality = np.where(size[labels] > 1, centrality, 1.0).round(4)
    keywords = _keywords((member_of @ g.X_lemma).tocsr(), g.names)
    sids = np.array(group["story_id"].astype(str).tolist(), dtype=object)
    phrases = np.array(group["phrase"].fillna("").astype(str).tolist(), dtype=object)
    starts, ends = group["start"].astype(int).to_numpy(), group["end"].astype(int).to_numpy()
    # members ordered per cluster: most central first, then shorter phrase, story, offset
    lengths = np.fromiter((len(x) for x in phrases), dtype=np.int64, count=n)
    order = np.lexsort((starts, sids.astype(str), lengths, -centrality, labels))
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    cids = np.empty(k, dtype=object)
    rows = []
    for idx in np.split(order, bounds):
        label = int(labels[idx[0]])
        cid = cluster_id(sids[idx], starts[idx], ends[idx])
        cids[label] = cid
        story_set = sorted(set(sids[idx].tolist()))
        regions = sorted({region_of.get(x, "") for x in story_set} - {""})
        dates = [date_of.get(x) for x in story_set if pd.notna(date_of.get(x))]
        rows.append((cid, theme, polarity, phrases[idx[0]], ", ".join(keywords[label]), len(idx), len(story_set),
                     len(regions), "; ".join(regions), min(dates) if dates else pd.NaT,
                     max(dates) if dates else pd.NaT, ";".join(story_set), int(idx.min())))
    clusters = pd.DataFrame(rows, columns=[*CLUSTER_COLUMNS, "_first"])
    clusters = clusters.sort_values("_first", kind="stable").drop(columns="_first").reset_index(drop=True)
    sent_idx = (group["sentence_index"].fillna(-1).astype(int).to_numpy() if "sentence_index" in group
                else np.full(n, -1))
    sentences = group["sentence"].fillna("").to_numpy() if "sentence" in group else np.full(n, "")
    members = pd.DataFrame({
        "cluster_id": cids[labels[order]], "theme": theme, "polarity": polarity, "story_id": sids[order],
        "sentence_index": sent_idx[order], "start": starts[order], "end": ends[order], "phrase": phrases[order],
        "sentence": sentences[order], "centrality": centrality[order]})
    return clusters, members
