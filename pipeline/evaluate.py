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
            pred[te] = clf.assign(proba[te])
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
# Agreement between two annotators: how far a model can be expected to go
# ---------------------------------------------------------------------------------------------

@dataclass
class AgreementEvaluation:
    """The second annotation against the first annotator's labels, on the stories both annotated,
    scored exactly as the models are (themes: `multilabel_scores` and main-theme accuracy;
    factors: `span_scores`, first annotator as gold), with the model's out-of-fold factors scored
    against the same first-annotator gold beside it."""

    n_stories: int
    main_agreement: float  # over stories the first annotator gave a theme
    themes: dict  # multilabel_scores of the second annotator's themes
    factors: dict  # span_scores(second, first)
    model_first: dict  # span_scores(model out-of-fold predictions, first) on the same stories
    n_first: int
    n_second: int
    n_adopted: int  # second-annotator factors added to the gold after adjudication


def annotator_agreement(stories: pd.DataFrame, labels: pd.DataFrame, gold: pd.DataFrame, labels2: pd.DataFrame,
                        factors2: pd.DataFrame, predicted: pd.DataFrame | None = None) -> AgreementEvaluation | None:
    """Agreement of the second annotation (`corpus.load_annotations(settings, second_annotation_dir)`)
    with the first annotator's part of the gold (factors without `annotator: second`). None when
    no story has a second annotation."""
    from .factors import gold_spans

    keys = tuple(t.key for t in load_themes())
    both = sorted(set(labels["story_id"]) & set(labels2["story_id"]) & set(stories["story_id"]))
    if not both:
        return None
    first_labels = labels.set_index("story_id").loc[both].reset_index()
    second_labels = labels2.set_index("story_id").loc[both].reset_index()
    Y1, Y2 = label_matrix(first_labels, keys), label_matrix(second_labels, keys)
    mains = [a == b for a, b in zip(first_labels["main_theme"], second_labels["main_theme"]) if a]
    on = stories[stories["story_id"].isin(both)]
    first = gold_spans(on, gold[(gold["annotator"] != "second") & gold["story_id"].isin(both)])
    second = gold_spans(on, factors2[factors2["story_id"].isin(both)])
    model = span_scores(predicted[predicted["story_id"].isin(both)], first) if predicted is not None else {}
    return AgreementEvaluation(len(both), float(np.mean(mains)) if mains else 0.0, multilabel_scores(Y1, Y2, keys),
                               span_scores(second, first), model, len(first), len(second),
                               int(((gold["annotator"] == "second") & gold["story_id"].isin(both)).sum()))


# ---------------------------------------------------------------------------------------------
# Clusters and the draft against the 2022 reference lists
# ---------------------------------------------------------------------------------------------

def reference_recovery(clusters: pd.DataFrame, members: pd.DataFrame, member_refs: pd.Series,
                       references, top: int = 8) -> dict:
    """Share of each theme's published factors recovered among its top-`top` draft items.

    An item recovers a reference when most (more than half) of its members carry that reference
    id. Scored per polarity: success references against the top succes items, bottleneck
    references against the top knelpunt items. `member_refs` is aligned with `members`.
    """
    from .draft import rank_clusters

    ranked = rank_clusters(clusters)
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


def cluster_agreement(members: pd.DataFrame, member_refs: pd.Series, own_theme: bool = True) -> float:
    """Adjusted Rand index between cluster ids and gold reference ids, over members that carry
    a reference id.

    Clustering runs per theme and polarity, and a factor of a story with two themes is a member
    in both themes' groups. `own_theme` (the reported ARI) counts each factor once, in the group of
    the theme its reference belongs to, where its published factor is listed. Pooled over all
    groups instead (`own_theme=False`), the two copies of a factor sit in two separately clustered
    groups and count as a disagreement, so even a perfect clustering scores well below 1.
    """
    from sklearn.metrics import adjusted_rand_score

    mask = member_refs.notna().to_numpy().copy()
    if own_theme:
        ref_theme = member_refs.fillna("").astype(str).str.split(".").str[0].to_numpy()
        mask &= ref_theme == members["theme"].to_numpy()
    if mask.sum() < 2:
        return 0.0
    return float(adjusted_rand_score(member_refs[mask].astype(str), members["cluster_id"][mask]))


# ---------------------------------------------------------------------------------------------
# Factor extraction under cross-validation
# ---------------------------------------------------------------------------------------------

def span_scores(pred_units: pd.DataFrame, gold: pd.DataFrame) -> dict:
    """Precision, recall, F1 per polarity of predicted units against gold evidence spans.

    A predicted unit is correct when it overlaps a gold span of the same polarity in the same
    story; a gold span is found when a predicted unit of its polarity overlaps it.
    """
    from .factors import overlap

    out = {}
    for pol in ("succes", "knelpunt"):
        P = pred_units[pred_units["polarity"] == pol]
        G = gold[gold["polarity"] == pol]
        gp = {s: list(zip(g["start"], g["end"])) for s, g in G.groupby("story_id")}
        pp = {s: list(zip(g["start"], g["end"])) for s, g in P.groupby("story_id")}
        tp_p = sum(any(overlap(a, b, c, d) for c, d in gp.get(s, [])) for s, a, b in zip(P["story_id"], P["start"], P["end"]))
        tp_r = sum(any(overlap(a, b, c, d) for c, d in pp.get(s, [])) for s, a, b in zip(G["story_id"], G["start"], G["end"]))
        p = tp_p / len(P) if len(P) else 0.0
        r = tp_r / len(G) if len(G) else 0.0
        out[pol] = {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
                    "predicted": int(len(P)), "gold": int(len(G))}
    return out


def lemma_f1(a: str, b: str) -> float:
    """F1 of the lemma bags of two phrases (stop words excluded)."""
    from .cluster import dutch_stop_words

    stop = dutch_stop_words()
    x = [w for w in a.lower().split() if w not in stop]
    y = [w for w in b.lower().split() if w not in stop]
    if not x or not y:
        return 0.0
    common = sum(min(x.count(w), y.count(w)) for w in set(x))
    if not common:
        return 0.0
    p, r = common / len(x), common / len(y)
    return 2 * p * r / (p + r)


@dataclass
class FactorEvaluation:
    folds: int
    n_stories: int
    n_gold: int
    model: dict
    baseline: dict
    phrase_lemma_f1: float
    n_phrases: int
    predictions: pd.DataFrame = field(repr=False, default=None)  # out-of-fold factor rows
    errors: pd.DataFrame = field(repr=False, default=None)


def evaluate_factors(stories: pd.DataFrame, sentences: pd.DataFrame, gold: pd.DataFrame, settings: Settings,
                     nlp=None, folds: int = 5) -> FactorEvaluation:
    """Grouped k-fold CV by story: the factor model never sees the story it is judged on."""
    from . import factors as F

    spans = F.gold_spans(stories, gold)
    units = F.statement_units(sentences)
    y = F.unit_labels(units, spans)
    pred = np.array(["none"] * len(units), dtype=object)
    conf = np.zeros(len(units))
    order = sorted(units["story_id"].unique())
    group_index = {s: i % folds for i, s in enumerate(np.random.default_rng(settings.seed).permutation(order))}
    groups = units["story_id"].map(group_index)
    for k in range(folds):
        te = np.flatnonzero(groups == k)
        tr = np.flatnonzero(groups != k)
        model = F.FactorModel(seed=settings.seed).fit(units.iloc[tr], y[tr])
        pred[te], conf[te] = model.predict(units.iloc[te])
    predicted = units.assign(polarity=pred, confidence=conf)
    predicted = predicted[predicted["polarity"] != "none"]
    base = units.assign(polarity=F.cue_baseline(units))
    base = base[base["polarity"] != "none"]
    # phrase quality: condensed phrase vs the gold phrase of the gold factor it matches
    matched, gold_phrases = [], []
    by_story = {s: g for s, g in spans.groupby("story_id")}
    for k, r in enumerate(predicted.itertuples(index=False)):
        g = by_story.get(r.story_id)
        if g is None:
            continue
        hits = g[(g["polarity"] == r.polarity) & (g["start"] < r.end) & (g["end"] > r.start)]
        if len(hits):
            matched.append(k)
            gold_phrases.append(hits.iloc[0]["phrase"])
    condensed = F.condense_units(predicted.iloc[matched])
    gold_lemmas = [l for _, l in F.condense_all(gold_phrases, nlp)] if nlp is not None else [g.lower() for g in gold_phrases]
    scores = [lemma_f1(c[1], g) for c, g in zip(condensed, gold_lemmas)]
    err = predicted.merge(units[["story_id", "start"]].assign(gold=y)[["story_id", "start", "gold"]], on=["story_id", "start"])
    missed = units.assign(gold=y, pred=pred)
    missed = missed[(missed["gold"] != "none") & (missed["pred"] == "none")]
    errors = pd.concat([err[err["gold"] != err["polarity"]].assign(kind="spurious or wrong polarity"),
                        missed.assign(kind="missed", polarity=missed["gold"])], ignore_index=True)
    return FactorEvaluation(folds, len(order), len(spans), span_scores(predicted, spans), span_scores(base, spans),
                            float(np.mean(scores)) if scores else 0.0, len(scores),
                            predicted.reset_index(drop=True),
                            errors[["story_id", "start", "end", "text", "polarity", "gold", "kind"]])


# ---------------------------------------------------------------------------------------------
# Clusters against the reference lists, with gold and with extracted factors
# ---------------------------------------------------------------------------------------------

@dataclass
class ClusterEvaluation:
    source: str
    n_factors: int
    n_clusters: int
    recall: float
    per_theme: dict
    ari: float  # own-theme (see cluster_agreement)
    n_recovered: int
    n_references: int
    ari_pooled: float = 0.0
    ari_pooled_ceiling: float = 0.0  # pooled ARI of a perfect clustering within each group


def _member_refs(members: pd.DataFrame, factors: pd.DataFrame) -> pd.Series:
    key = factors.drop_duplicates(["story_id", "start", "end", "polarity"]).set_index(
        ["story_id", "start", "end", "polarity"])["reference"]
    return pd.Series([key.get((s, a, b, p)) for s, a, b, p in zip(members["story_id"], members["start"],
                                                                   members["end"], members["polarity"])])


def evaluate_clusters(factors: pd.DataFrame, stories: pd.DataFrame, references, settings: Settings,
                      source: str, top: int = 8, hints=None) -> ClusterEvaluation:
    """Cluster `factors` (with a `reference` column) and compare with the reference lists.
    `hints`: the known-factor scores to cluster with (cross-fitted: see `crossfit_references`)."""
    from .cluster import cluster_factors

    result = cluster_factors(factors, stories, threshold=settings.cluster_threshold, references=hints)
    refs = _member_refs(result.members, factors)
    rec = reference_recovery(result.clusters, result.members, refs, references, top=top)
    perfect = result.members.assign(cluster_id=result.members["theme"] + "|" + refs.fillna("").to_numpy())
    return ClusterEvaluation(source, len(factors), len(result.clusters), rec["recall"], rec["per_theme"],
                             cluster_agreement(result.members, refs), rec["n_recovered"], rec["n_references"],
                             cluster_agreement(result.members, refs, own_theme=False),
                             cluster_agreement(perfect, refs, own_theme=False))


def crossfit_references(stories: pd.DataFrame, gold: pd.DataFrame, references, folds: int = 5):
    """Known-factor models for the evaluation: one per fold of a story-grouped split, each trained
    on the gold factors of the other folds' stories, so a story's factors are always scored by a
    model that never saw them (nor their reference ids)."""
    from .references import CrossFitted, ReferenceModel, factor_texts

    fold_of = {sid: i % folds for i, sid in enumerate(sorted(set(stories["story_id"])))}
    models = []
    for k in range(folds):
        train = gold[[fold_of.get(s) != k for s in gold["story_id"]]]
        models.append(ReferenceModel().fit(factor_texts(train), train["reference"].tolist(), references))
    return CrossFitted(models, fold_of)


def gold_factor_table(stories: pd.DataFrame, gold: pd.DataFrame, labels: pd.DataFrame, nlp=None) -> pd.DataFrame:
    """Gold annotations as a factors table (phrase = the gold phrase), for clustering."""
    from . import factors as F

    spans = F.gold_spans(stories, gold)
    themes = dict(zip(labels["story_id"], labels["themes"].apply(";".join)))
    lemmas = [l for _, l in F.condense_all(list(spans["phrase"]), nlp, max_words=40)] if nlp is not None \
        else spans["phrase"].str.lower().tolist()
    return spans.assign(phrase_lemmas=lemmas, sentence=spans["evidence"], themes=spans["story_id"].map(themes).fillna(""),
                        sentence_index=-1)


def extracted_factor_table(predicted: pd.DataFrame, stories: pd.DataFrame, gold: pd.DataFrame, labels: pd.DataFrame,
                           nlp=None) -> pd.DataFrame:
    """Out-of-fold extracted factors (condensed), each carrying the reference id of the gold span
    of the same polarity it overlaps (or None), grouped by the stories' gold themes."""
    from . import factors as F

    spans = F.gold_spans(stories, gold)
    by_story = {s: g for s, g in spans.groupby("story_id")}
    refs = []
    for r in predicted.itertuples(index=False):
        g = by_story.get(r.story_id)
        hit = None if g is None else g[(g["polarity"] == r.polarity) & (g["start"] < r.end) & (g["end"] > r.start)]
        refs.append(hit.iloc[0]["reference"] if hit is not None and len(hit) else None)
    condensed = F.condense_units(predicted)
    themes = dict(zip(labels["story_id"], labels["themes"].apply(";".join)))
    return predicted.assign(phrase=[c[0] for c in condensed], phrase_lemmas=[c[1] for c in condensed],
                            reference=refs, sentence=predicted["text"],
                            themes=predicted["story_id"].map(themes).fillna(""))


# ---------------------------------------------------------------------------------------------
# The whole evaluation and its report
# ---------------------------------------------------------------------------------------------

TARGETS = {"theme_macro_f1": 0.85, "theme_main_accuracy": 0.90, "theme_margin": 0.10,
           "factor_f1": 0.75, "factor_margin": 0.15, "cluster_recall": 0.8, "cluster_ari": 0.6}


@dataclass
class Evaluation:
    themes: ThemeEvaluation
    factors: FactorEvaluation
    clusters_gold: ClusterEvaluation
    clusters_extracted: ClusterEvaluation
    clusters_plain: list  # the same two without known-factor hints, for comparison
    agreement: AgreementEvaluation | None
    n_stories: int
    model: str
    seconds: float


def run_evaluation(settings: Settings, folds: int = 5, repeats: int = 3, echo=print) -> Evaluation:
    import time

    from .corpus import load_annotations, load_reference
    from .ingest import ingest
    from .nlp import load, parse_stories
    from .themes import story_documents

    start = time.monotonic()
    corpus = settings.replace(corpus_dir=Settings().corpus_dir)
    stories = ingest(corpus, echo=None).stories
    labels, gold = load_annotations(corpus)
    stories = stories[stories["story_id"].isin(labels["story_id"])].reset_index(drop=True)
    nlp = load(settings)
    sentences = parse_stories(stories, settings, nlp)
    echo(f"evaluate: {len(stories)} annotated stories parsed; themes ({folds}-fold x {repeats}) ...")
    themes = evaluate_themes(story_documents(stories, sentences), labels, settings, folds=folds, repeats=repeats)
    echo("evaluate: factors ...")
    factors = evaluate_factors(stories, sentences, gold, settings, nlp, folds=folds)
    labels2, factors2 = load_annotations(corpus, settings.second_annotation_dir)
    agreement = annotator_agreement(stories, labels, gold, labels2, factors2, factors.predictions)
    echo("evaluate: clusters ...")
    refs = load_reference(settings.reference_file)
    hints = crossfit_references(stories, gold, refs, folds=folds)
    gold_table = gold_factor_table(stories, gold, labels, nlp)
    extracted_table = extracted_factor_table(factors.predictions, stories, gold, labels, nlp)
    cg = evaluate_clusters(gold_table, stories, refs, settings, "gold", hints=hints)
    ce = evaluate_clusters(extracted_table, stories, refs, settings, "extracted", hints=hints)
    plain = [evaluate_clusters(gold_table, stories, refs, settings, "gold, no hints"),
             evaluate_clusters(extracted_table, stories, refs, settings, "extracted, no hints")]
    name = nlp.meta.get("name", "")
    model_name = f"{name if name.startswith(nlp.meta.get('lang', '')) else nlp.meta.get('lang') + '_' + name} {nlp.meta.get('version')}"
    return Evaluation(themes, factors, cg, ce, plain, agreement, len(stories), model_name, time.monotonic() - start)


def _ok(value: float, target: float) -> str:
    return "met" if value >= target - 1e-12 else "**not met**"


def render_evaluation(ev: Evaluation, settings: Settings) -> str:
    import platform

    from .cluster import PhraseVectorizer
    from .settings import load_themes

    t, f = ev.themes, ev.factors
    names = {th.key: th.name for th in load_themes()}
    lines = ["# Evaluation", "",
             "Generated by `make evaluate` (`python -m pipeline evaluate`); do not edit by hand. Every figure is "
             "measured on stories the model did not learn from: cross-validation over the bundled corpus, with "
             "the models (and their thresholds) retrained inside each fold.", "",
             f"- Corpus: {ev.n_stories} annotated stories; spaCy pipeline: {ev.model}; "
             f"Python {platform.python_version()}; run time {ev.seconds:.0f} s", "",
             "## Themes (stage 2)", "",
             f"Repeated multilabel-stratified {t.folds}-fold cross-validation, {t.repeats} repeats (iterative "
             "stratification); per-theme thresholds chosen by an inner cross-validation on each training part.", "",
             "| | classifier | keyword baseline | target |", "|---|---:|---:|---|",
             f"| macro-F1 | {t.classifier['macro_f1']:.3f} (sd {t.classifier['macro_f1_std']:.3f}) | {t.baseline['macro_f1']:.3f} | "
             f">= {TARGETS['theme_macro_f1']}: {_ok(t.classifier['macro_f1'], TARGETS['theme_macro_f1'])} |",
             f"| micro-F1 | {t.classifier['micro_f1']:.3f} | {t.baseline['micro_f1']:.3f} | |",
             f"| main-theme accuracy | {t.main_accuracy:.3f} | {t.baseline_main_accuracy:.3f} | "
             f">= {TARGETS['theme_main_accuracy']}: {_ok(t.main_accuracy, TARGETS['theme_main_accuracy'])} |",
             f"| macro-F1 above baseline | {t.classifier['macro_f1'] - t.baseline['macro_f1']:+.3f} | | "
             f">= {TARGETS['theme_margin']}: {_ok(t.classifier['macro_f1'] - t.baseline['macro_f1'], TARGETS['theme_margin'])} |",
             "", "| theme | stories | precision | recall | F1 | baseline F1 |", "|---|---:|---:|---:|---:|---:|"]
    for k, v in t.classifier["per_theme"].items():
        b = t.baseline["per_theme"][k]
        lines.append(f"| {names.get(k, k)} | {v['support']} | {v['precision']:.2f} | {v['recall']:.2f} | {v['f1']:.2f} | {b['f1']:.2f} |")
    lines += ["", "Main themes mixed up most often (gold -> predicted, count over all repeats):", ""]
    lines += [f"- {a} -> {b or '(none)'}: {n}" for a, b, n in t.confusions[:8]] or ["- none"]
    lines += ["", "## Success factors and bottlenecks (stage 3)", "",
              f"Grouped {f.folds}-fold cross-validation by story ({f.n_stories} stories, {f.n_gold} gold statements). "
              "A predicted statement is correct when it overlaps a gold evidence span of the same polarity; a gold "
              "span is found when a predicted statement of its polarity overlaps it.", "",
              "| polarity | precision | recall | F1 | cue-word baseline F1 | F1 above baseline | target F1 >= 0.75 |",
              "|---|---:|---:|---:|---:|---:|---|"]
    for pol in ("succes", "knelpunt"):
        m, b = f.model[pol], f.baseline[pol]
        lines.append(f"| {pol} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {b['f1']:.3f} | "
                     f"{m['f1'] - b['f1']:+.3f} | {_ok(m['f1'], TARGETS['factor_f1'])} |")
    lines += ["", f"Phrase quality: for {f.n_phrases} correctly detected statements, the lemma F1 between the "
              f"condensed phrase and the gold phrase is **{f.phrase_lemma_f1:.3f}** (stop words excluded).", ""]
    lines += render_agreement(ev.agreement, t)
    lines += ["## Clusters and the draft (stages 4-5) against the 2022 reference lists", "",
              f"Cluster threshold {settings.cluster_threshold} (cosine distance). Recall: share of each theme's published "
              "success factors and bottlenecks recovered among its top 8 draft items of that polarity (an item recovers "
              "a reference when more than half of its members carry that reference id). ARI: adjusted Rand index "
              "between clusters and gold reference ids, over the factors that carry one, each counted in the group of "
              "its reference's theme. A factor of a story with two themes is also clustered in its other theme's group; "
              "pooled over all groups (column 'ARI, pooled', the figure reported before 2026-11-29), those copies count "
              "as disagreements, so there even a perfect clustering (one cluster per reference in each group) "
              f"scores only {ev.clusters_gold.ari_pooled_ceiling:.2f} on this corpus.", "",
              "Known-factor hints (`pipeline/references.py`): phrases are clustered with the scores of a model that "
              "recognises which published factor a statement restates. Here those scores are cross-fitted: "
              f"a story's factors are scored by a model trained on the other folds' stories ({f.folds}-fold, "
              "grouped by story). The rows without hints show the clustering on its own. The hint weight "
              f"(`PhraseVectorizer.w_reference` = {PhraseVectorizer().w_reference}) was chosen among 1, 2, 4, 8 and 12 "
              "on gold-input figures of this corpus (see `docs/experiments.md`), so the gold-input figures are "
              "somewhat optimistic. The extracted-input figures played no part in the choice.", "",
              "| input | factors | clusters | recall (top 8) | ARI | ARI, pooled | target |",
              "|---|---:|---:|---:|---:|---:|---|"]
    for c in (ev.clusters_gold, ev.clusters_extracted, *ev.clusters_plain):
        target = (f"recall >= 0.8: {_ok(c.recall, TARGETS['cluster_recall'])}; "
                  f"ARI >= 0.6: {_ok(c.ari, TARGETS['cluster_ari'])}") if "no hints" not in c.source else "(comparison)"
        lines.append(f"| {c.source} | {c.n_factors} | {c.n_clusters} | {c.recall:.3f} ({c.n_recovered}/{c.n_references}) | "
                     f"{c.ari:.3f} | {c.ari_pooled:.3f} | {target} |")
    lines += ["", "| theme | recall, gold input | recall, extracted |", "|---|---:|---:|"]
    for k in names:
        lines.append(f"| {names[k]} | {ev.clusters_gold.per_theme.get(k, 0):.2f} | {ev.clusters_extracted.per_theme.get(k, 0):.2f} |")
    lines += ["", "Error lists for inspection (misclassified stories, missed and spurious statements) are written "
              "to `build/evaluation/` and shown in `notebooks/04-evaluation.ipynb`.", ""]
    return "\n".join(lines)


def render_agreement(a: AgreementEvaluation | None, t: ThemeEvaluation) -> list[str]:
    """The agreement section: the second annotator beside the models, against the same labels."""
    if a is None:
        return []
    lines = ["## Agreement between two annotators", "",
             f"{a.n_stories} stories were annotated a second time, independently, from the story text and "
             "`docs/annotation.md` alone (`corpus/second-annotation/`). Below, the second annotator is scored against "
             "the first annotator exactly as the models are scored: a model can hardly be expected to agree with "
             "the gold more than a second careful reader does.", "",
             "| themes | second annotator | classifier (cross-validated) |", "|---|---:|---:|",
             f"| macro-F1 | {a.themes['macro_f1']:.3f} | {t.classifier['macro_f1']:.3f} |",
             f"| micro-F1 | {a.themes['micro_f1']:.3f} | {t.classifier['micro_f1']:.3f} |",
             f"| main-theme accuracy | {a.main_agreement:.3f} | {t.main_accuracy:.3f} |", "",
             f"Factors: the second annotator marked {a.n_second} statements where the first marked {a.n_first}. Both "
             "columns are scored against the first annotator's statements only (precision / recall / F1):", "",
             "| polarity | second annotator | factor model (cross-validated) |", "|---|---|---|"]
    for pol in ("succes", "knelpunt"):
        x, m = a.factors[pol], a.model_first.get(pol)
        model = f"{m['precision']:.3f} / {m['recall']:.3f} / {m['f1']:.3f}" if m else "-"
        lines.append(f"| {pol} | {x['precision']:.3f} / {x['recall']:.3f} / {x['f1']:.3f} | {model} |")
    lines.append("")
    if a.n_adopted:
        lines += [f"The statements only the second annotator marked were adjudicated against the guide; the {a.n_adopted} "
                  "that were adopted are in the gold with `annotator: second`, so the stage-3 figures above (and the "
                  "models `analyze` trains) use both annotators' statements.", ""]
    return lines


def write_evaluation(ev: Evaluation, settings: Settings, doc_path) -> list:
    import json
    from pathlib import Path

    from .outputs import write_csv, write_text

    out = Path(settings.out_dir) / "evaluation"
    written = [write_text(Path(doc_path), render_evaluation(ev, settings)),
               write_csv(out / "theme-errors.csv", ev.themes.errors),
               write_csv(out / "factor-errors.csv", ev.factors.errors),
               write_csv(out / "factor-predictions.csv", ev.factors.predictions)]
    summary = {"themes": {"classifier": ev.themes.classifier, "baseline": ev.themes.baseline,
                          "main_accuracy": ev.themes.main_accuracy, "baseline_main_accuracy": ev.themes.baseline_main_accuracy,
                          "confusions": ev.themes.confusions},
               "factors": {"model": ev.factors.model, "baseline": ev.factors.baseline,
                           "phrase_lemma_f1": ev.factors.phrase_lemma_f1},
               "clusters": {c.source: {"recall": c.recall, "per_theme": c.per_theme, "ari": c.ari,
                                       "ari_pooled": c.ari_pooled,
                                       "n_clusters": c.n_clusters, "n_factors": c.n_factors}
                            for c in (ev.clusters_gold, ev.clusters_extracted, *ev.clusters_plain)},
               "targets": TARGETS, "n_stories": ev.n_stories, "model": ev.model}
    if ev.agreement is not None:
        a = ev.agreement
        summary["agreement"] = {"n_stories": a.n_stories, "main_agreement": a.main_agreement, "themes": a.themes,
                                "factors": a.factors, "model_vs_first": a.model_first, "n_first": a.n_first,
                                "n_second": a.n_second, "n_adopted": a.n_adopted}
    written.append(write_text(out / "evaluation.json", json.dumps(summary, indent=2, ensure_ascii=False, default=float)))
    return written
