"""Known factors: which published factor of the 2022 analysis a factor statement restates.

`corpus/reference/lessons-learned-2022.yaml` lists the published success factors and bottlenecks
per theme; the corpus annotations link many gold factors to one of them (`reference`) or to none.
`ReferenceModel` learns that link: a multinomial logistic regression over the condensed phrase
(the clustering's own `PhraseVectorizer` features: word TF-IDF, character n-grams, concepts).
Each reference's published wording is a training example too, so a reference that no annotated
story restates can still be recognised.

For a factor in theme t with polarity p, `group_scores` gives the probabilities of t's
references of polarity p, renormalised against "none" (a factor that restates no known factor
gets low scores everywhere). Clustering appends these scores to the phrase vectors: factors that
restate the same known factor in different words come together. They are hints from a model,
measured under cross-validation in `make evaluate`, never gold.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from . import cluster as cluster_stage
from . import features
from .corpus import Reference, load_reference
from .settings import Settings

NONE = "none"


def factor_texts(factors: pd.DataFrame) -> list[str]:
    """What the model reads of a factor: its condensed phrase. Phrase + evidence sentence was
    tried too on the 113-story corpus (hint weight 2: recall 0.78 vs 0.81 with gold input, 0.18 vs
    0.15 with extracted input); the phrase alone was kept, as choices are made on the gold-input
    figures."""
    return factors["phrase"].fillna("").astype(str).tolist()


@dataclass
class ReferenceModel:
    """Factor text -> probability per published reference (and "none"). fit/predict like scikit-learn."""

    C: float = 10.0
    prototype_weight: int = 3  # each reference's published wording counts as this many examples

    references_: tuple[Reference, ...] = field(default=(), repr=False)
    vectorizer_: object = field(default=None, repr=False)
    clf_: LogisticRegression | None = field(default=None, repr=False)
    fingerprint_: str = ""

    def fit(self, texts: list[str], labels: list[str | None], references: list[Reference]) -> "ReferenceModel":
        """`texts` from `factor_texts`; `labels`: a reference id per factor, or None when it
        restates none."""
        self.references_ = tuple(references)
        known = {r.ref_id for r in references}
        y = [lab if lab in known else NONE for lab in labels]
        protos = [r.phrase for r in references] * self.prototype_weight
        y = y + [r.ref_id for r in references] * self.prototype_weight
        self.vectorizer_ = cluster_stage.PhraseVectorizer()
        texts = list(texts) + protos
        X = self.vectorizer_.fit_transform(texts, texts)
        # saga: ~20x faster than lbfgs on these 70-odd classes x ~20k sparse features; seeded
        self.clf_ = LogisticRegression(C=self.C, solver="saga", tol=1e-3, max_iter=500, random_state=0)
        self.clf_.fit(X, y)
        return self

    def predict_proba(self, texts: list[str]) -> pd.DataFrame:
        """Probabilities per class (reference ids and "none"), one row per factor text."""
        if not len(texts):
            return pd.DataFrame(columns=list(self.clf_.classes_))
        p = self.clf_.predict_proba(self.vectorizer_.transform(texts, texts))
        return pd.DataFrame(p, columns=list(self.clf_.classes_))

    def group_references(self, theme: str, polarity: str) -> list[str]:
        return [r.ref_id for r in self.references_ if r.theme == theme and r.polarity == polarity]

    def group_scores(self, group: pd.DataFrame, theme: str, polarity: str) -> np.ndarray:
        """Scores of the references of `theme` and `polarity` for the factors in `group`
        (rows x references), each row renormalised against "none"."""
        refs = self.group_references(theme, polarity)
        if not refs or not len(group):
            return np.zeros((len(group), len(refs)))
        p = self.predict_proba(factor_texts(group))
        mine = p.reindex(columns=refs, fill_value=0.0).to_numpy()
        none = p[NONE].to_numpy() if NONE in p else np.zeros(len(group))
        total = mine.sum(axis=1) + none
        return mine / np.where(total > 0, total, 1.0)[:, None]


class CrossFitted:
    """For evaluation: scores of each story's factors from a model trained without that story
    (`models` per fold, `fold_of` story id -> fold)."""

    def __init__(self, models: list[ReferenceModel], fold_of: dict[str, int]):
        self.models, self.fold_of = models, fold_of
        self.fingerprint_ = "cross-fitted"

    def group_scores(self, group: pd.DataFrame, theme: str, polarity: str) -> np.ndarray:
        refs = self.models[0].group_references(theme, polarity)
        out = np.zeros((len(group), len(refs)))
        folds = np.array([self.fold_of.get(s, 0) for s in group["story_id"].tolist()])
        for k, model in enumerate(self.models):
            rows = np.flatnonzero(folds == k)
            if len(rows):
                out[rows] = model.group_scores(group.iloc[rows], theme, polarity)
        return out


def _fingerprint(gold: pd.DataFrame, references: list[Reference], model: ReferenceModel) -> str:
    h = hashlib.sha256(repr((model.C, model.prototype_weight)).encode())
    for text, ref in zip(factor_texts(gold), gold["reference"].tolist()):
        h.update(f"{text}\x00{ref}\x01".encode())
    h.update(repr([(r.ref_id, r.phrase) for r in references]).encode())
    for module in (__file__, cluster_stage.__file__, features.__file__):  # the code computing the features
        h.update(Path(module).read_bytes())
    return h.hexdigest()[:16]


def train(gold: pd.DataFrame, settings: Settings) -> ReferenceModel | None:
    """Fit on the annotated factors (phrase and reference id; `corpus.load_annotations`). The
    fitted model is cached under settings.cache_dir by a fingerprint of its training data,
    parameters and code, like the factor model. None when there is no reference file or no
    annotated factor."""
    from .outputs import atomic_path

    if not Path(settings.reference_file).exists() or not len(gold):
        return None
    references = load_reference(settings.reference_file)
    model = ReferenceModel()
    fingerprint = _fingerprint(gold, references, model)
    path = Path(settings.cache_dir) / "models" / f"references-{fingerprint}.joblib"
    try:
        model = joblib.load(path) if path.exists() else None
    except Exception:  # a damaged cache is retrained
        model = None
    if model is None:
        model = ReferenceModel().fit(factor_texts(gold), gold["reference"].tolist(), references)
        with atomic_path(path) as tmp:
            joblib.dump(model, tmp)
    model.fingerprint_ = fingerprint
    return model
