"""Stage 2: which of the configured themes each story is about (multi-label, with confidence).

`ThemeClassifier` follows scikit-learn's habits: settings are stored as given, what it learned
ends in an underscore, `fit` returns the model and `predict_proba` never trains.

Features: TF-IDF over the story's lemmas (word uni- and bigrams) and over character n-grams of
the text (Dutch compounds: "werkgeversdienstverlening" shares n-grams with "werkgevers"). One
logistic regression per theme. A theme is assigned when its probability reaches that theme's
threshold, chosen by cross-validation on the training data (never on the story being
predicted). A story that reaches no threshold gets no theme and is flagged for the editor.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from . import features
from .features import CharNgramVectorizer
from .settings import DATA_DIR, Settings, Theme, load_themes

FLAG_NONE = "geen-thema"  # no theme reached its threshold: the editor decides
FLAG_UNSURE = "onzeker"  # the main theme only just passed its threshold
FLAG_EDITOR = "redacteur"  # labels come from an editor (gold annotation or review sheet)


def story_documents(stories: pd.DataFrame, sentences: pd.DataFrame) -> pd.DataFrame:
    """One row per story with `text` (title + body) and `lemmas` (all sentence lemmas)."""
    lemmas = sentences.groupby("story_id", sort=False)["lemmas"].apply(" ".join)
    docs = stories[["story_id", "title", "text"]].copy()
    docs["text"] = docs["title"].fillna("") + "\n\n" + docs["text"].fillna("")
    docs["lemmas"] = docs["story_id"].map(lemmas).fillna("")
    return docs[["story_id", "text", "lemmas"]].reset_index(drop=True)


def _best_threshold(y: np.ndarray, p: np.ndarray, floor: float = 0.15, ceiling: float = 0.85) -> float:
    """The probability threshold with the best F1 on out-of-fold predictions (ties: the middle)."""
    if y.sum() == 0:
        return 0.5
    grid = np.round(np.arange(floor, ceiling + 1e-9, 0.025), 3)
    scores = []
    for t in grid:
        pred = p >= t
        tp = np.sum(pred & (y == 1))
        fp = np.sum(pred & (y == 0))
        fn = np.sum(~pred & (y == 1))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    scores = np.array(scores)
    best = np.flatnonzero(scores >= scores.max() - 1e-9)
    return float(grid[best[len(best) // 2]])


@dataclass
class ThemeClassifier:
    themes: tuple[str, ...]
    C: float = 10.0
    char_ngrams: tuple[int, int] = (3, 5)
    word_ngrams: tuple[int, int] = (1, 2)
    min_df: int = 2
    threshold_folds: int = 4
    unsure_margin: float = 0.1
    max_themes: int = 2  # a story is about one or two themes (docs/annotation.md); 0 = no limit
    main_model: bool = True
    seed_weight: float = 1.0  # weight of the seed-term rates (data/themes.yaml) as extra features
    seed: int = 20221

    # learned
    word_vectorizer_: TfidfVectorizer | None = field(default=None, repr=False)
    char_vectorizer_: CharNgramVectorizer | None = field(default=None, repr=False)
    models_: list | None = field(default=None, repr=False)
    main_model_: OneVsRestClassifier | None = field(default=None, repr=False)
    thresholds_: np.ndarray | None = None
    n_train_: int = 0
    fingerprint_: str = ""  # of the training data and parameters (set by `train`)

    # -- features ---------------------------------------------------------------------------
    def _fit_vectorizers(self, docs: pd.DataFrame):
        self.word_vectorizer_ = TfidfVectorizer(ngram_range=self.word_ngrams, min_df=self.min_df, sublinear_tf=True,
                                                token_pattern=r"(?u)\b[^\W\d_][\w-]+\b", max_df=0.9)
        self.char_vectorizer_ = CharNgramVectorizer(self.char_ngrams, min_df=self.min_df, max_features=60000, max_df=0.9)
        self.word_vectorizer_.fit(docs["lemmas"])
        self.char_vectorizer_.fit(docs["text"])

    def _features(self, docs: pd.DataFrame):
        blocks = [self.word_vectorizer_.transform(docs["lemmas"]), self.char_vectorizer_.transform(docs["text"])]
        if self.seed_weight:
            rates = keyword_scores(docs["text"], load_themes())
            blocks.append(sp.csr_matrix(np.log1p(rates) * self.seed_weight))
        return sp.hstack(blocks).tocsr()

    def _fit_models(self, X, Y: np.ndarray) -> list:
        models = []
        for j in range(Y.shape[1]):
            y = Y[:, j]
            if y.min() == y.max():  # a theme without positive (or negative) examples
                models.append(float(y[0]))
                continue
            m = LogisticRegression(C=self.C, class_weight="balanced", solver="liblinear", dual=True,
                                   max_iter=5000, random_state=self.seed)
            models.append(m.fit(X, y))
        return models

    @staticmethod
    def _proba(models: list, X) -> np.ndarray:
        cols = [np.full(X.shape[0], m) if isinstance(m, float) else m.predict_proba(X)[:, 1] for m in models]
        return np.column_stack(cols)

    # -- API --------------------------------------------------------------------------------
    def fit(self, docs: pd.DataFrame, Y: np.ndarray, main=None) -> "ThemeClassifier":
        """Train on story documents (see `story_documents`), a 0/1 matrix stories x themes and,
        optionally, each story's main theme ("" for none), which trains the main-theme model."""
        Y = np.asarray(Y, dtype=int)
        self.thresholds_ = self._cv_thresholds(docs, Y)
        self._fit_vectorizers(docs)
        X = self._features(docs)
        self.models_ = self._fit_models(X, Y)
        self.main_model_ = None
        if self.main_model and main is not None:
            main = np.asarray(main, dtype=object)
            has = main != ""
            if len(set(main[has])) > 1:
                self.main_model_ = OneVsRestClassifier(LogisticRegression(
                    C=self.C, solver="liblinear", dual=True, max_iter=5000, random_state=self.seed))
                self.main_model_.fit(X[np.flatnonzero(has)], main[has])
        self.n_train_ = len(docs)
        return self

    def _cv_thresholds(self, docs: pd.DataFrame, Y: np.ndarray) -> np.ndarray:
        """Per-theme thresholds from out-of-fold probabilities on the training data."""
        from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

        n_folds = min(self.threshold_folds, max(2, int(Y.sum(axis=0)[Y.sum(axis=0) > 0].min(initial=2))))
        if len(docs) < 2 * n_folds:
            return np.full(Y.shape[1], 0.5)
        oof = np.zeros(Y.shape, dtype=float)
        folds = MultilabelStratifiedKFold(n_splits=n_folds, shuffle=True, random_state=self.seed)
        for tr, te in folds.split(np.zeros(len(docs)), Y):
            inner = ThemeClassifier(self.themes, self.C, self.char_ngrams, self.word_ngrams, self.min_df,
                                    seed_weight=self.seed_weight, seed=self.seed)
            inner._fit_vectorizers(docs.iloc[tr])
            models = inner._fit_models(inner._features(docs.iloc[tr]), Y[tr])
            oof[te] = self._proba(models, inner._features(docs.iloc[te]))
        return np.array([_best_threshold(Y[:, j], oof[:, j]) for j in range(Y.shape[1])])

    def predict_proba(self, docs: pd.DataFrame, X=None) -> np.ndarray:
        if self.models_ is None:
            raise RuntimeError("ThemeClassifier is not fitted; call fit() or load() first")
        return self._proba(self.models_, self._features(docs) if X is None else X)

    def assign(self, P: np.ndarray) -> np.ndarray:
        """Which themes each story gets: those whose probability reaches the theme's threshold,
        at most `max_themes` of them (the most probable)."""
        assigned = P >= self.thresholds_
        if self.max_themes:
            rank = np.argsort(np.argsort(-P, axis=1, kind="stable"), axis=1)
            assigned &= rank < self.max_themes
        return assigned

    def predict(self, docs: pd.DataFrame) -> np.ndarray:
        return self.assign(self.predict_proba(docs))

    def main_scores(self, docs: pd.DataFrame, P: np.ndarray | None = None, X=None) -> np.ndarray:
        """Per story and theme, the score that decides the main theme among assigned themes:
        the main-theme model's probability when there is one, else the theme probability."""
        X = self._features(docs) if X is None else X
        if P is None:
            P = self.predict_proba(docs, X)
        if self.main_model_ is None:
            return P
        M = self.main_model_.predict_proba(X)
        out = np.zeros_like(P)
        for c, k in enumerate(self.main_model_.classes_):
            if k in self.themes:
                out[:, self.themes.index(k)] = M[:, c]
        return out

    def order_assigned(self, P: np.ndarray, S: np.ndarray) -> list[list[int]]:
        """Assigned theme indices per story, main theme first (by main score, then probability)."""
        assigned = self.assign(P)
        return [sorted(np.flatnonzero(assigned[i]).tolist(), key=lambda j: (-S[i, j], -P[i, j]))
                for i in range(P.shape[0])]

    def explain(self, docs: pd.DataFrame, theme_index: int, top: int = 5, rows=None, Xw=None) -> list[list[str]]:
        """Per story (or per row in `rows`), the lemma terms that pushed this theme's score up most
        (word features only). `Xw`: the word features of `docs`, when already computed."""
        model = self.models_[theme_index]
        rows = range(len(docs)) if rows is None else rows
        if isinstance(model, float):
            return [[] for _ in rows]
        Xw = self.word_vectorizer_.transform(docs["lemmas"]) if Xw is None else Xw
        coef = model.coef_[0][: Xw.shape[1]]
        names = self.word_vectorizer_.get_feature_names_out()
        out = []
        for i in rows:
            lo, hi = Xw.indptr[i], Xw.indptr[i + 1]
            idx, data = Xw.indices[lo:hi], Xw.data[lo:hi]
            contrib = data * coef[idx]
            order = np.argsort(-contrib)[:top]
            out.append([names[idx[k]] for k in order if contrib[k] > 0])
        return out

    # -- persistence ------------------------------------------------------------------------
    def save(self, path: Path, meta: dict) -> None:
        from .outputs import atomic_path, write_text

        path = Path(path)
        with atomic_path(path) as tmp:
            joblib.dump(self, tmp)
        write_text(path.with_suffix(".json"), json.dumps(meta, indent=2, ensure_ascii=False, default=str) + "\n")

    @staticmethod
    def load(path: Path) -> "ThemeClassifier":
        model = joblib.load(Path(path))
        if not isinstance(model, ThemeClassifier):
            raise TypeError(f"{path} does not hold a ThemeClassifier")
        return model


# ---------------------------------------------------------------------------------------------
# Keyword baseline (seed terms only), for the evaluation
# ---------------------------------------------------------------------------------------------

def seed_pattern(seeds) -> re.Pattern:
    parts = []
    for s in seeds:
        s = s.lower().strip()
        body = re.escape(s[:-1]) + r"\w*" if s.endswith("*") else re.escape(s)
        parts.append(body)
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)")


def keyword_scores(texts, themes: tuple[Theme, ...]) -> np.ndarray:
    """Seed-term hits per 100 words, stories x themes."""
    patterns = [seed_pattern(t.seeds) for t in themes]
    rows = []
    for text in texts:
        low = text.lower()
        n = max(1, len(low.split()))
        rows.append([100.0 * len(p.findall(low)) / n for p in patterns])
    return np.array(rows)


def keyword_baseline(texts, themes: tuple[Theme, ...], min_rate: float = 0.5) -> np.ndarray:
    """Assign a theme when its seed terms make up at least `min_rate` per 100 words."""
    return keyword_scores(texts, themes) >= min_rate


# ---------------------------------------------------------------------------------------------
# The stage
# ---------------------------------------------------------------------------------------------

def label_matrix(labels: pd.DataFrame, keys: tuple[str, ...]) -> np.ndarray:
    return np.array([[int(k in ts) for k in keys] for ts in labels["themes"]], dtype=int)


def training_fingerprint(docs: pd.DataFrame, labels: pd.DataFrame, clf: ThemeClassifier) -> str:
    h = hashlib.sha256()
    for sid, text, lem in zip(docs["story_id"], docs["text"], docs["lemmas"]):
        h.update(f"{sid}\x00{hashlib.sha256((text + lem).encode()).hexdigest()}".encode())
    for sid, ts in zip(labels["story_id"], labels["themes"]):
        h.update(f"{sid}:{';'.join(ts)}".encode())
    h.update(repr((clf.themes, clf.C, clf.char_ngrams, clf.word_ngrams, clf.min_df, clf.seed, clf.seed_weight,
                   clf.main_model)).encode())
    h.update((DATA_DIR / "themes.yaml").read_bytes())  # seed terms are features
    for module in (__file__, features.__file__):  # the code computing the features
        h.update(Path(module).read_bytes())
    return h.hexdigest()[:16]


def train(train_docs: pd.DataFrame, labels: pd.DataFrame, settings: Settings,
          cache_path: Path | None = None) -> ThemeClassifier:
    """Fit the classifier on labelled stories; reuse the saved model when nothing changed."""
    keys = tuple(t.key for t in load_themes())
    labels = labels.set_index("story_id").loc[train_docs["story_id"]].reset_index()
    clf = ThemeClassifier(keys, seed=settings.seed)
    fingerprint = training_fingerprint(train_docs, labels, clf)
    cache_path = Path(cache_path or settings.cache_dir / "models" / "themes.joblib")
    meta_path = cache_path.with_suffix(".json")
    if cache_path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("fingerprint") == fingerprint:
            clf = ThemeClassifier.load(cache_path)
            clf.fingerprint_ = fingerprint
            return clf
    Y = label_matrix(labels, keys)
    clf.fit(train_docs, Y, labels["main_theme"].fillna("").tolist())
    import sklearn

    clf.save(cache_path, {
        "fingerprint": fingerprint, "themes": list(keys), "n_train": len(train_docs),
        "positives_per_theme": dict(zip(keys, Y.sum(axis=0).tolist())),
        "thresholds": dict(zip(keys, clf.thresholds_.round(3).tolist())),
        "params": {"C": clf.C, "char_ngrams": clf.char_ngrams, "word_ngrams": clf.word_ngrams,
                   "min_df": clf.min_df, "seed": clf.seed},
        "sklearn_version": sklearn.__version__,
        "training_stories": train_docs["story_id"].tolist(),
    })
    clf.fingerprint_ = fingerprint
    return clf


def classify(docs: pd.DataFrame, clf: ThemeClassifier, editor_labels: pd.DataFrame | None = None) -> pd.DataFrame:
    """The themes table: story_id, main_theme, themes (';'-joined), flag, terms, p_<key> per theme.

    Stories an editor labelled (editor_labels: story_id, themes list) keep those labels.
    """
    keys = clf.themes
    X = clf._features(docs) if len(docs) else None
    P = clf.predict_proba(docs, X) if len(docs) else np.zeros((0, len(keys)))
    order = clf.order_assigned(P, clf.main_scores(docs, P, X)) if len(docs) else []
    editor = {} if editor_labels is None else dict(zip(editor_labels["story_id"], editor_labels["themes"]))
    final = []
    for i, sid in enumerate(docs["story_id"]):
        if sid in editor:
            final.append((list(editor[sid]), FLAG_EDITOR))
            continue
        idx = order[i]
        flag = ""
        if not idx:
            flag = FLAG_NONE
        elif P[i, idx[0]] - clf.thresholds_[idx[0]] < clf.unsure_margin:
            flag = FLAG_UNSURE
        final.append(([keys[j] for j in idx], flag))
    # explanations only for the themes a story got, computed per theme over those stories
    Xw = X[:, : len(clf.word_vectorizer_.vocabulary_)].tocsr() if len(docs) else None  # the word block
    terms_of: dict[tuple[int, str], list[str]] = {}
    for j, k in enumerate(keys):
        rows = [i for i, (ts, _) in enumerate(final) if k in ts]
        for i, terms in zip(rows, clf.explain(docs, j, rows=rows, Xw=Xw) if rows else []):
            terms_of[(i, k)] = terms
    rows = []
    for i, sid in enumerate(docs["story_id"]):
        themes, flag = final[i]
        terms = {k: terms_of.get((i, k), []) for k in themes if k in keys}
        row = {"story_id": sid, "main_theme": themes[0] if themes else "", "themes": ";".join(themes),
               "flag": flag, "terms": "; ".join(f"{k}: {', '.join(v)}" for k, v in terms.items())}
        row.update({f"p_{k}": round(float(P[i, j]), 4) for j, k in enumerate(keys)})
        rows.append(row)
    cols = ["story_id", "main_theme", "themes", "flag", "terms"] + [f"p_{k}" for k in keys]
    return pd.DataFrame(rows, columns=cols)
