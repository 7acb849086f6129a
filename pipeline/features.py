"""Shared text features: character n-grams within words, computed with numpy.

scikit-learn's `TfidfVectorizer(analyzer="char_wb")` builds every n-gram as a Python string,
which dominates the run time on large collections. `CharNgramVectorizer` computes the same kind
of features (n-grams of each word padded with a space on both sides, so Dutch compounds share
their parts) by hashing all windows of the whole batch at once with numpy: no Python loop per
n-gram. Fit keeps the hashed columns seen in at least `min_df` documents (and at most
`max_features`, the most frequent), then weighs them by smoothed idf with sublinear tf and
L2-normalises each row, like `TfidfVectorizer(sublinear_tf=True)`.

Hash collisions (2**22 buckets) are rare and harmless for these models; the features have no
readable names, so explanations and keywords use the word features instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

_PRIME = np.uint64(1_000_003)
_MIX = np.uint64(0xFF51AFD7ED558CCD)
_CHUNK_CHARS = 4_000_000  # characters hashed per batch (bounds the temporary memory)


def _padded(text: str) -> str:
    # every word padded with one space on each side; two spaces between words, so that no
    # n-gram of length 3 or more crosses a word (or document) boundary
    return " " + "  ".join(str(text).lower().split()) + " "


def char_ngram_counts(texts, ngram_range: tuple[int, int] = (3, 5), bits: int = 22) -> sp.csr_matrix:
    """Raw counts of hashed character n-grams within words: (len(texts), 2**bits) CSR."""
    lo, hi = ngram_range
    if lo < 3:
        raise ValueError("character n-grams within words need n >= 3")
    texts = list(texts)
    shift = np.uint64(64 - bits)
    rows_all, cols_all = [], []
    start = 0
    while start < len(texts):
        # a chunk of documents of about _CHUNK_CHARS characters
        padded, size, end = [], 0, start
        while end < len(texts) and (size < _CHUNK_CHARS or end == start):
            p = _padded(texts[end])
            padded.append(p)
            size += len(p)
            end += 1
        joined = "".join(padded)
        codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        doc_of = np.repeat(np.arange(start, end, dtype=np.int32), [len(p) for p in padded])
        spaces = np.concatenate([[0], np.cumsum(codes == 32, dtype=np.int32)])
        h = np.zeros(len(codes), dtype=np.uint64)
        for n in range(1, hi + 1):
            # rolling polynomial hash of the windows of length n, from those of length n - 1
            m = len(codes) - n + 1
            if m <= 0:
                break
            h = h[:m] * _PRIME + codes[n - 1:n - 1 + m]
            if n < lo:
                continue
            idx = np.flatnonzero(spaces[n - 1:n - 1 + m] == spaces[1:1 + m])  # no space inside the window
            g = h[idx] ^ np.uint64(n)
            g ^= g >> np.uint64(33)
            g *= _MIX
            g ^= g >> np.uint64(29)
            rows_all.append(doc_of[idx])
            cols_all.append((g >> shift).astype(np.int32))
        start = end
    rows = np.concatenate(rows_all) if rows_all else np.zeros(0, dtype=np.int32)
    cols = np.concatenate(cols_all) if cols_all else np.zeros(0, dtype=np.int32)
    X = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(texts), 1 << bits))
    X.sum_duplicates()
    return X


@dataclass
class CharNgramVectorizer:
    """Hashed character n-grams within words -> tf-idf rows (see the module docstring)."""

    ngram_range: tuple[int, int] = (3, 5)
    min_df: int = 1
    max_df: float = 1.0  # share of documents; more frequent n-grams are dropped
    max_features: int | None = None
    sublinear_tf: bool = True
    bits: int = 22

    columns_: np.ndarray | None = field(default=None, repr=False)  # kept hashed columns
    idf_: np.ndarray | None = field(default=None, repr=False)

    def fit(self, texts) -> "CharNgramVectorizer":
        self.fit_transform(texts)
        return self

    def fit_transform(self, texts) -> sp.csr_matrix:
        counts = char_ngram_counts(texts, self.ngram_range, self.bits)
        n_docs = counts.shape[0]
        df = np.bincount(counts.indices, minlength=counts.shape[1])
        keep = np.flatnonzero((df >= self.min_df) & (df <= self.max_df * n_docs))
        if self.max_features is not None and len(keep) > self.max_features:
            totals = np.asarray(counts.sum(axis=0)).ravel()[keep]
            order = np.lexsort((keep, -totals))  # most frequent first, ties by column
            keep = np.sort(keep[order[: self.max_features]])
        self.columns_ = keep
        self.idf_ = np.log((1 + n_docs) / (1 + df[keep])) + 1.0
        return self._weigh(counts[:, keep])

    def transform(self, texts) -> sp.csr_matrix:
        if self.columns_ is None:
            raise RuntimeError("CharNgramVectorizer is not fitted")
        return self._weigh(char_ngram_counts(texts, self.ngram_range, self.bits)[:, self.columns_])

    def _weigh(self, X: sp.csr_matrix) -> sp.csr_matrix:
        X = X.tocsr().astype(np.float64)
        if self.sublinear_tf:
            np.log(X.data, out=X.data)
            X.data += 1.0
        X = (X @ sp.diags(self.idf_)).tocsr()
        return normalize(X) if X.shape[1] else X

    @property
    def n_features_(self) -> int:
        return 0 if self.columns_ is None else len(self.columns_)
