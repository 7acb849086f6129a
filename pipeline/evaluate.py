"""Every metric behind `make evaluate`, computed under cross-validation on the bundled corpus.

Nothing here is measured on the data a model was trained on: the classifier and the extractor
are retrained inside each fold, and thresholds are chosen inside the training part of each fold.
The results are written to docs/evaluation.md by `python -m pipeline evaluate`.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .settings import Settings, load_themes
from .themes import ThemeClassifier, keyword_baseline, label_matrix


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def multilabel_scores(Y: np.ndarray, P: np.ndarray, keys) -> dict:
    """Micro/macro F1 and per-theme precision, recall, F1 for 0/1 matrices."""
    per = {}
    TP = FP = FN = 0
    for j, k in enumerate(keys):
        tp = int(np.sum((P[:, j] == 1) & (Y[:, j] == 1)))
        fp = int(np.sum((P[:, j] == 1) & (Y[:, j] == 0)))
        fn = int(np.sum((P[:, j] == 0) & (Y[:, j] == 1)))
        per[k] = dict(zip(("precision", "recall", "f1"), prf(tp, fp, fn)), support=int(Y[:, j].sum()))
        TP, FP, FN = TP + tp, FP + fp, FN + fn
    return {"micro_f1": prf(TP, FP, FN)[2], "macro_f1": float(np.mean([v["f1"] for v in per.values()])),
            "per_theme": per}


@dataclass
class ThemeEvaluation:
    folds: int
    repeats: int
    n_stories: int
    classifier: dict
    baseline: dict
    main_accuracy: float
    baseline_main_accuracy: float
    confusions: list[tuple[str, str, int]]
    errors: pd.DataFrame = field(repr=False, default=None)


def make_classifier(keys, settings: Settings, **params) -> ThemeClassifier:
    """The classifier configuration that `analyze` uses, so evaluation measures the same model."""
    return ThemeClassifier(keys, seed=settings.seed, **params)


def evaluate_themes(docs: pd.DataFrame, labels: pd.DataFrame, settings: Settings,
                    folds: int = 5, repeats: int = 3) -> ThemeEvaluation:
    """Repeated multilabel-stratified k-fold CV of the classifier and the keyword baseline.

    Scores are pooled over all out-of-fold predictions of each repeat and averaged over repeats.
    Main-theme accuracy counts stories that have at least one gold theme.
    """
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    themes = load_themes()
    keys = tuple(t.key for t in themes)
    labels = labels.set_index("story_id").loc[docs["story_id"]].reset_index()
    Y = label_matrix(labels, keys)
    gold_main = labels["main_theme"].tolist()
    base_pred = keyword_baseline(docs["text"], themes).astype(int)
    from .themes import keyword_scores

    base_scores = keyword_scores(docs["text"], themes)
    results, mains, confusion = [], [], Counter()
    error_rows = []
    for rep in range(repeats):
        pred = np.zeros_like(Y)
        proba = np.zeros(Y.shape, dtype=float)
        main_pred = [""] * len(docs)
        splitter = MultilabelStratifiedKFold(n_splits=folds, shuffle=True, random_state=settings.seed + rep)
        for tr, te in splitter.split(np.zeros(len(docs)), Y):
            clf = make_classifier(keys, settings).fit(docs.iloc[tr], Y[tr], [gold_main[i] for i in tr])
            proba[te] = clf.predict_proba(docs.iloc[te])
            pred[te] = proba[te] >= clf.thresholds_
            for i, order in zip(te, clf.order_assigned(proba[te], clf.main_scores(docs.iloc[te], proba[te]))):
                main_pred[i] = keys[order[0]] if order else ""
        results.append(multilabel_scores(Y, pred, keys))
        hits = []
        for i, gm in enumerate(gold_main):
            if not gm:
                continue
            pm = main_pred[i]
            hits.append(pm == gm)
            if pm != gm:
                confusion[(gm, pm)] += 1
        mains.append(float(np.mean(hits)))
        if rep == 0:
            for i, sid in enumerate(docs["story_id"]):
                gold = set(labels["themes"].iloc[i])
                got = {keys[j] for j in range(len(keys)) if pred[i, j]}
                if gold != got:
                    error_rows.append({"story_id": sid, "gold": ";".join(labels["themes"].iloc[i]),
                                       "predicted": ";".join(sorted(got, key=lambda k: -proba[i, keys.index(k)])),
                                       "missed": ";".join(sorted(gold - got)), "spurious": ";".join(sorted(got - gold))})
    base = multilabel_scores(Y, base_pred, keys)
    base_hits = [keys[int(np.argmax(base_scores[i]))] == gm for i, gm in enumerate(gold_main) if gm]

    def average(rs):
        out = {"micro_f1": float(np.mean([r["micro_f1"] for r in rs])),
               "macro_f1": float(np.mean([r["macro_f1"] for r in rs])),
               "macro_f1_std": float(np.std([r["macro_f1"] for r in rs])), "per_theme": {}}
        for k in keys:
            out["per_theme"][k] = {m: float(np.mean([r["per_theme"][k][m] for r in rs]))
                                   for m in ("precision", "recall", "f1")}
            out["per_theme"][k]["support"] = rs[0]["per_theme"][k]["support"]
        return out

    return ThemeEvaluation(
        folds=folds, repeats=repeats, n_stories=len(docs), classifier=average(results), baseline=base,
        main_accuracy=float(np.mean(mains)), baseline_main_accuracy=float(np.mean(base_hits)),
        confusions=[(a, b, n) for (a, b), n in confusion.most_common()],
        errors=pd.DataFrame(error_rows, columns=["story_id", "gold", "predicted", "missed", "spurious"]),
    )


# ---------------------------------------------------------------------------------------------
# Clusters and the draft against the 2022 reference lists
# ---------------------------------------------------------------------------------------------

def rank_items(clusters: pd.DataFrame) -> pd.DataFrame:
    """Draft order within theme and polarity: distinct stories, then regions, then label."""
    from .draft import rank_clusters

    return rank_clusters(clusters)


def reference_recovery(clusters: pd.DataFrame, members: pd.DataFrame, member_refs: pd.Series,
                       references, top: int = 8) -> dict:
    """Share of each theme's published factors recovered among its top-`top` draft items.

    An item recovers a reference when most (more than half) of its members carry that reference
    id. Scored per polarity: success references against the top succes items, bottleneck
    references against the top knelpunt items. `member_refs` is aligned with `members`.
    """
    ranked = rank_items(clusters)
    m = members.assign(reference=member_refs.values)
    majority = {}
    for cid, g in m.groupby("cluster_id"):
        counts = g["reference"].value_counts()
        if len(counts) and counts.iloc[0] * 2 > len(g):
            majority[cid] = counts.index[0]
    per_theme = {}
    for ref in references:
        items = ranked[(ranked["theme"] == ref.theme) & (ranked["polarity"] == ref.polarity)].head(top)
        found = any(majority.get(cid) == ref.ref_id for cid in items["cluster_id"])
        per_theme.setdefault(ref.theme, []).append(found)
    recalls = {t: float(np.mean(v)) for t, v in per_theme.items()}
    all_refs = [x for v in per_theme.values() for x in v]
    return {"recall": float(np.mean(all_refs)) if all_refs else 0.0, "per_theme": recalls,
            "n_references": len(all_refs), "n_recovered": int(sum(all_refs))}


def cluster_agreement(members: pd.DataFrame, member_refs: pd.Series) -> float:
    """Adjusted Rand index between cluster ids and gold reference ids, over members that carry
    a reference id (each theme/polarity group's clusters are distinct ids, so pooling is safe)."""
    from sklearn.metrics import adjusted_rand_score

    mask = member_refs.notna().values
    if mask.sum() < 2:
        return 0.0
    return float(adjusted_rand_score(member_refs[mask].astype(str), members["cluster_id"][mask]))
