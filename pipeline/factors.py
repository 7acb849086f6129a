"""Stage 3: find the statements of what worked (succes) and what stood in the way (knelpunt),
and condense each into a short Dutch phrase.

Units: every sentence of the sentences table (each heading, paragraph sentence and list item);
a sentence with a contrast ("X helpt, maar Y remt") is split at the clause boundary into two
units. Each unit gets a polarity (succes, knelpunt or none) with a confidence from
`FactorModel`, a logistic regression over
  - lemma uni- and bigrams of the unit,
  - cue words and constructions (pipeline/data/cues.yaml), negation and contrast, quotes,
  - the heading the unit stands under ("Wat werkt", "Knelpunten", ...), list items,
  - the part of speech sequence (a hint of the construction),
  - the context: the signals of the unit before and after it in the same story, and where in the
    story the unit stands (opening, middle, closing),
trained on the gold evidence spans of the bundled corpus. `cue_baseline` uses the cue words
alone (the evaluation's baseline).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction import DictVectorizer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from . import features
from .features import CharNgramVectorizer
from .frames import named, tuples
from .settings import DATA_DIR, Settings, read_yaml

LABELS = ("none", "succes", "knelpunt")
SENTENCE_FIELDS = ["story_id", "sentence_index", "start", "end", "text", "block_type", "heading", "lemmas", "tokens"]
UNIT_COLUMNS = ["story_id", "sentence_index", "unit", "start", "end", "text", "block_type", "heading", "lemmas",
                "tokens"]
FACTOR_COLUMNS = ["story_id", "sentence_index", "start", "end", "polarity", "confidence", "sentence", "phrase",
                  "phrase_lemmas", "themes"]


# ---------------------------------------------------------------------------------------------
# Cue lexicon
# ---------------------------------------------------------------------------------------------

def _term_regex(terms) -> re.Pattern:
    parts = []
    for t in sorted(terms, key=len, reverse=True):
        t = t.lower().strip()
        pieces = [re.escape(p) for p in t.rstrip("*").split("*")]
        body = r"\w*".join(pieces) + (r"\w*" if t.endswith("*") else "")
        body = body.replace(r"\ ", r"\s+")
        parts.append(body)
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.I)


@dataclass(frozen=True)
class Cues:
    heading_succes: re.Pattern
    heading_knelpunt: re.Pattern
    succes: re.Pattern
    knelpunt: re.Pattern
    negation: re.Pattern
    contrast: re.Pattern
    framing: tuple[re.Pattern, ...]
    attribution: tuple[re.Pattern, ...]

    def heading_polarity(self, heading: str) -> str:
        h = heading.lower().strip(" :?!.")
        if not h:
            return ""
        if self.heading_knelpunt.search(h):
            return "knelpunt"
        if self.heading_succes.search(h):
            return "succes"
        return ""


@lru_cache(maxsize=4)
def load_cues(path: Path = DATA_DIR / "cues.yaml") -> Cues:
    data = read_yaml(path)
    return Cues(
        heading_succes=_term_regex(data["headings"]["succes"]),
        heading_knelpunt=_term_regex(data["headings"]["knelpunt"]),
        succes=_term_regex(data["succes"]),
        knelpunt=_term_regex(data["knelpunt"]),
        negation=_term_regex(data["negation"]),
        contrast=_term_regex(data["contrast"]),
        framing=tuple(re.compile(p, re.I) for p in data.get("framing", [])),
        attribution=tuple(re.compile(p, re.I) for p in data.get("attribution", [])),
    )


# ---------------------------------------------------------------------------------------------
# Units: sentences, split at a contrast between clauses
# ---------------------------------------------------------------------------------------------

# "..., maar ...", "...; toch ...", "... terwijl ..." : split before the connective
_CLAUSE_SPLIT = re.compile(r"(?:[,;:–—-]\s+|\s+)(?=(?:maar|echter|terwijl|alleen|toch|hoewel|ondanks dat|"
                           r"daarentegen|anderzijds|desondanks)\b)", re.I)


def split_units(sentence: str) -> list[tuple[int, int]]:
    """Offsets (relative to the sentence) of its units; one unit unless a contrast splits it.

    Only splits where both sides have at least four words, so "maar ook" inside a list or a
    sentence starting with "Maar" stays whole.
    """
    cuts = [0]
    for m in _CLAUSE_SPLIT.finditer(sentence):
        if m.start() == 0:
            continue
        left = sentence[cuts[-1]:m.start()]
        right = sentence[m.end():]
        if len(left.split()) >= 4 and len(right.split()) >= 4:
            cuts.append(m.end())
    spans = []
    for i, c in enumerate(cuts):
        end = cuts[i + 1] if i + 1 < len(cuts) else len(sentence)
        seg = sentence[c:end]
        stripped = seg.rstrip(" ,;:–—-")
        lead = len(seg) - len(seg.lstrip())
        spans.append((c + lead, c + len(stripped)))
    return [s for s in spans if s[1] > s[0]]


def make_units(sentences: pd.DataFrame) -> pd.DataFrame:
    """The units table: one row per clause unit, with offsets in the story text."""
    rows = []
    has_tokens = "tokens" in sentences.columns
    for rec in named(sentences[[c for c in SENTENCE_FIELDS if c in sentences.columns]], "Sentence"):
        spans = split_units(rec.text) if rec.block_type != "heading" else [(0, len(rec.text))]
        toks = rec.tokens if has_tokens and isinstance(rec.tokens, str) else ""
        lemma_words = rec.lemmas.split()
        for u, (a, b) in enumerate(spans):
            if not re.search(r"\w", rec.text[a:b]):
                continue  # punctuation left over by the sentence splitter
            if len(spans) == 1:
                lem = rec.lemmas
            else:  # share the sentence lemmas out in proportion to the unit's words
                n_words = len(rec.text.split())
                wa = len(rec.text[:a].split())
                wb = len(rec.text[:b].split())
                lo = round(len(lemma_words) * wa / max(1, n_words))
                hi = round(len(lemma_words) * wb / max(1, n_words))
                lem = " ".join(lemma_words[lo:hi])
            unit_tokens = toks if len(spans) == 1 else _tokens_within(toks, rec.start + a, rec.start + b)
            rows.append((rec.story_id, rec.sentence_index, u, rec.start + a, rec.start + b, rec.text[a:b],
                         rec.block_type, rec.heading, lem, unit_tokens))
    return pd.DataFrame(rows, columns=UNIT_COLUMNS)


def statement_units(sentences: pd.DataFrame) -> pd.DataFrame:
    """The units that may be statements, in reading order: every unit but the headings (a heading
    is context, read through each unit's `heading`). Training, extraction and evaluation all use
    this one set, so a unit's neighbours (the context features) are the same in each."""
    units = make_units(sentences)
    return units[units["block_type"] != "heading"].reset_index(drop=True)


def parse_tokens(tokens: str) -> list[tuple[int, int, str, str, str, int]]:
    """The `tokens` column (see nlp.SENTENCE_COLUMNS) as (start, end, lemma, pos, dep, head) tuples."""
    out = []
    for rec in tokens.split("\t") if tokens else []:
        a, b, lemma, pos, dep, head = rec.rsplit(",", 5) if rec.count(",") > 5 else rec.split(",")
        out.append((int(a), int(b), lemma, pos, dep, int(head)))
    return out


def _tokens_within(tokens: str, start: int, end: int) -> str:
    """Token records of a sentence restricted to [start, end); heads re-indexed (-1 when outside)."""
    toks = parse_tokens(tokens)
    keep = [k for k, t in enumerate(toks) if start <= t[0] < end]
    new_index = {k: i for i, k in enumerate(keep)}
    return "\t".join(f"{t[0]},{t[1]},{t[2]},{t[3]},{t[4]},{new_index.get(t[5], -1)}" for t in (toks[k] for k in keep))


# ---------------------------------------------------------------------------------------------
# Features and the model
# ---------------------------------------------------------------------------------------------

_QUOTE = re.compile(r"[\"“”‘’«»]|^'|\s'")


def unit_signals(units: pd.DataFrame, cues: Cues) -> list[dict]:
    """Hand-made signals per unit (cue counts, heading polarity, negation, contrast, quotes, list)."""
    feats = []
    for rec in named(units[["text", "heading", "block_type", "unit"]], "Unit"):
        t = rec.text
        low = t.lower()
        n_s = len(cues.succes.findall(low))
        n_k = len(cues.knelpunt.findall(low))
        neg = bool(cues.negation.search(low))
        hpol = cues.heading_polarity(rec.heading) if rec.block_type != "heading" else ""
        f = {
            "cue_s": min(n_s, 3), "cue_k": min(n_k, 3),
            "cue_s_any": n_s > 0, "cue_k_any": n_k > 0,
            "neg": neg, "neg_cue_s": neg and n_s > 0, "neg_cue_k": neg and n_k > 0,
            "contrast": bool(cues.contrast.search(low)),
            "starts_contrast": bool(re.match(r"(maar|toch|echter|alleen|helaas)\b", low)),
            "quote": bool(_QUOTE.search(t)),
            "bullet": rec.block_type == "bullet",
            "heading": rec.block_type == "heading",
            "question": t.rstrip().endswith("?"),
            "heading_pol=" + (hpol or "none"): True,
            "heading_any": bool(rec.heading),
            "short": len(t.split()) < 6,
            "long": len(t.split()) > 30,
            "digits": bool(re.search(r"\d", t)),
            "unit>0": rec.unit > 0,
        }
        if rec.heading and rec.block_type != "heading":
            f.update({"hw=" + w: True for w in re.findall(r"\w+", rec.heading.lower())[:6]})
        feats.append(f)
    return feats


def _dict_matrix(dicts: list[dict], vocabulary: dict[str, int]) -> sp.csr_matrix:
    """What `DictVectorizer.transform` gives for boolean/numeric feature dicts (unknown keys and
    zero values dropped), built in one pass."""
    indptr, indices, values = [0], [], []
    for d in dicts:
        for key, value in d.items():
            j = vocabulary.get(key)
            if j is not None and value:
                indices.append(j)
                values.append(float(value))
        indptr.append(len(indices))
    X = sp.csr_matrix((np.array(values), np.array(indices, dtype=np.int64), np.array(indptr)),
                      shape=(len(dicts), len(vocabulary)))
    X.sort_indices()
    return X


def neighbour_rows(X: sp.csr_matrix, story: np.ndarray, step: int) -> sp.csr_matrix:
    """Row i of the result is row i + step of X when that row belongs to the same story, else
    empty (units are in reading order, story by story)."""
    n = X.shape[0]
    source = np.arange(n) + step
    ok = (source >= 0) & (source < n)
    ok[ok] = story[source[ok]] == story[ok]
    rows = np.flatnonzero(ok)
    move = sp.csr_matrix((np.ones(len(rows)), (rows, source[rows])), shape=(n, n))
    return (move @ X).tocsr()


def position_features(story: np.ndarray) -> sp.csr_matrix:
    """Where each unit stands in its story: opening (first tenth), middle, closing (last 15%)."""
    rank = pd.Series(story).groupby(story, sort=False).cumcount().to_numpy()
    size = pd.Series(story).groupby(story, sort=False).transform("size").to_numpy()
    rel = rank / np.maximum(1, size - 1)
    cols = np.column_stack([rel < 0.1, (rel >= 0.1) & (rel <= 0.85), rel > 0.85]).astype(float)
    return sp.csr_matrix(cols)


@dataclass
class FactorModel:
    C: float = 1.0
    seed: int = 20221
    class_weight: str | None = "balanced"
    use_chars: bool = True
    signal_weight: float = 0.5
    context_weight: float = 0.5  # signals of the neighbouring units; 0 turns context off

    vectorizer_: TfidfVectorizer | None = field(default=None, repr=False)
    char_vectorizer_: CharNgramVectorizer | None = field(default=None, repr=False)
    signals_: DictVectorizer | None = field(default=None, repr=False)
    model_: LogisticRegression | None = field(default=None, repr=False)
    fingerprint_: str = ""  # of the training data and parameters (set by `train`)

    def _features(self, units: pd.DataFrame, fit: bool = False):
        cues = load_cues()
        sig = unit_signals(units, cues)
        if fit:
            self.vectorizer_ = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True,
                                               token_pattern=r"(?u)\b\w[\w-]*\b")
            self.signals_ = DictVectorizer()
            Xl = self.vectorizer_.fit_transform(units["lemmas"])
            Xs = self.signals_.fit_transform(sig)
            if self.use_chars:
                self.char_vectorizer_ = CharNgramVectorizer((3, 5), min_df=3, max_features=40000)
                Xc = self.char_vectorizer_.fit_transform(units["text"])
        else:
            Xl = self.vectorizer_.transform(units["lemmas"])
            Xs = _dict_matrix(sig, self.signals_.vocabulary_)
            if self.use_chars:
                Xc = self.char_vectorizer_.transform(units["text"])
        parts = [Xl, Xs * self.signal_weight] + ([Xc] if self.use_chars else [])
        if self.context_weight:
            story = units["story_id"].to_numpy()
            w = self.signal_weight * self.context_weight
            parts += [neighbour_rows(Xs, story, -1) * w, neighbour_rows(Xs, story, 1) * w,
                      position_features(story) * w]
        return sp.hstack(parts).tocsr()

    def fit(self, units: pd.DataFrame, y) -> "FactorModel":
        X = self._features(units, fit=True)
        self.model_ = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=3000,
                                         random_state=self.seed)
        self.model_.fit(X, np.asarray(y))
        return self

    def predict_proba(self, units: pd.DataFrame) -> pd.DataFrame:
        if self.model_ is None:
            raise RuntimeError("FactorModel is not fitted")
        if len(units) == 0:
            return pd.DataFrame(columns=list(LABELS))
        P = self.model_.predict_proba(self._features(units))
        cols = {c: P[:, i] for i, c in enumerate(self.model_.classes_)}
        return pd.DataFrame({c: cols.get(c, np.zeros(len(units))) for c in LABELS})

    def predict(self, units: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(labels, confidence) per unit."""
        P = self.predict_proba(units)
        idx = P.values.argmax(axis=1)
        return np.array(LABELS)[idx], P.values.max(axis=1)


def cue_baseline(units: pd.DataFrame) -> np.ndarray:
    """Polarity from cue words alone: more bottleneck cues -> knelpunt, else success cues -> succes."""
    cues = load_cues()
    out = []
    for t in units["text"]:
        low = t.lower()
        n_s, n_k = len(cues.succes.findall(low)), len(cues.knelpunt.findall(low))
        out.append("knelpunt" if n_k and n_k >= n_s else "succes" if n_s else "none")
    return np.array(out)


# ---------------------------------------------------------------------------------------------
# Gold labels for units
# ---------------------------------------------------------------------------------------------

def gold_spans(stories: pd.DataFrame, gold: pd.DataFrame) -> pd.DataFrame:
    """Gold factor annotations with character offsets in the ingested story texts."""
    from .corpus import locate

    texts = dict(zip(stories["story_id"], stories["text"]))
    rows = []
    for rec in gold.itertuples(index=False):
        text = texts.get(rec.story_id)
        if text is None:
            continue
        span = locate(text, rec.evidence)
        if span is None:
            continue
        rows.append({**rec._asdict(), "start": span[0], "end": span[1]})
    return pd.DataFrame(rows, columns=[*gold.columns, "start", "end"])


def overlap(a0: int, a1: int, b0: int, b1: int) -> int:
    return max(0, min(a1, b1) - max(a0, b0))


def unit_labels(units: pd.DataFrame, spans: pd.DataFrame) -> np.ndarray:
    """Gold polarity per unit: the polarity of the gold span covering most of it (>= 40% of the
    unit or >= 60% of the span), else 'none'."""
    by_story: dict[str, list] = {}
    for sid, a, b, pol in zip(spans["story_id"], spans["start"], spans["end"], spans["polarity"]):
        by_story.setdefault(sid, []).append((int(a), int(b), pol))
    labels = []
    for sid, ua, ub in zip(units["story_id"], units["start"], units["end"]):
        best, best_ov = "none", 0
        for a, b, pol in by_story.get(sid, ()):
            ov = overlap(ua, ub, a, b)
            if ov and (ov >= 0.4 * (ub - ua) or ov >= 0.6 * (b - a)) and ov > best_ov:
                best, best_ov = pol, ov
        labels.append(best)
    return np.array(labels)


# ---------------------------------------------------------------------------------------------
# Condensation
# ---------------------------------------------------------------------------------------------

_LEAD_PUNCT = re.compile(r"^[\s\"“”‘’'«»(\[–—-]+")
_TRAIL_PUNCT = re.compile(r"[\s\"“”‘’'«»)\]–—:;,.!?-]+$")
_CONNECTIVE = re.compile(r"^(en|maar|want|dus|ook|toch|echter|daarnaast|bovendien|verder|vooral|wel|"
                         r"daarom|zo|immers|tegelijk|tegelijkertijd|alleen)\b[,\s]*", re.I)


def strip_framing(text: str, cues: Cues | None = None) -> str:
    """Drop quotes, attributions ("zegt Jansen") and framing ("Volgens X is het belangrijk dat")."""
    cues = cues or load_cues()
    t = _TRAIL_PUNCT.sub("", _LEAD_PUNCT.sub("", text))
    for _ in range(3):
        before = t
        for pat in cues.attribution:
            t = pat.sub("", t)
        for pat in cues.framing:
            t = pat.sub("", t, count=1)
        t = _CONNECTIVE.sub("", t)
        t = _TRAIL_PUNCT.sub("", _LEAD_PUNCT.sub("", t))
        if t == before:
            break
    return t or _TRAIL_PUNCT.sub("", _LEAD_PUNCT.sub("", text))


_REMOVABLE = {"advcl", "acl:relcl", "acl", "appos", "parataxis", "obl", "nmod", "conj", "obl:agent", "dislocated",
              "vocative", "discourse", "ccomp", "xcomp"}


def condense(text: str, nlp=None, max_words: int = 12) -> tuple[str, str]:
    """A phrase of at most `max_words` words for one statement, and its lemmas (see `condense_all`)."""
    return condense_all([text], nlp, max_words)[0]


def condense_all(texts: list[str], nlp=None, max_words: int = 12) -> list[tuple[str, str]]:
    """Phrases for free-standing statements (no stored parse): each is parsed with `nlp` and then
    condensed like a unit (see `condense_units`). Without a pipeline the framing-stripped text is
    cut after `max_words` words and lower-cased as its "lemmas"."""
    if nlp is None:
        out = []
        for text in texts:
            phrase = " ".join(strip_framing(text).split()[:max_words])
            out.append((phrase, phrase.lower()))
        return out
    from .nlp import doc_to_sentences

    units = []
    for text, doc in zip(texts, nlp.pipe(texts, batch_size=64)):
        records, offset = [], 0
        for r in doc_to_sentences(doc, ""):  # one token list; heads shifted to the joined positions
            toks = parse_tokens(r["tokens"])
            records += [f"{a},{b},{lem},{pos},{dep},{h + offset if h >= 0 else -1}" for a, b, lem, pos, dep, h in toks]
            offset += len(toks)
        units.append({"text": text, "start": 0, "tokens": "\t".join(records)})
    return condense_units(pd.DataFrame(units, columns=["text", "start", "tokens"]), max_words)


def condense_units(units: pd.DataFrame, max_words: int = 12) -> list[tuple[str, str]]:
    """Phrases for units from their stored tokens (no second parse): framing and attribution
    stripped, then the dependency tree pruned (see `_reduce_tokens`) to at most `max_words` words.
    Units without tokens fall back to a plain cut."""
    out = []
    for text, start, tokens in tuples(units, ["text", "start", "tokens"]):
        core = strip_framing(text)
        offset = text.find(core)
        toks = parse_tokens(tokens) if isinstance(tokens, str) else []
        if offset < 0 or not toks:
            words = core.split()[:max_words]
            out.append((" ".join(words), " ".join(words).lower()))
            continue
        a, b = start + offset, start + offset + len(core)
        out.append(_reduce_tokens(text, start, [t for t in toks if a <= t[0] and t[1] <= b], toks, max_words))
    return out


def _reduce_tokens(text: str, base: int, kept: list, all_tokens: list, max_words: int) -> tuple[str, str]:
    """Prune the largest subordinate parts (by the stored dependency tree) until <= max_words."""
    if not kept:
        return "", ""
    index = {id(t): k for k, t in enumerate(all_tokens)}
    ids = [index[id(t)] for t in kept]
    alive = set(ids)
    children: dict[int, list[int]] = {}
    for k in ids:
        h = all_tokens[k][5]
        if h in alive and h != k:
            children.setdefault(h, []).append(k)
    roots = [k for k in ids if all_tokens[k][5] not in alive or all_tokens[k][5] == k]
    root = next((k for k in roots if all_tokens[k][4] == "ROOT"), roots[0] if roots else ids[0])

    def subtree(k: int) -> list[int]:
        stack, seen = [k], []
        while stack:
            x = stack.pop()
            if x in alive:
                seen.append(x)
                stack.extend(children.get(x, []))
        return seen

    def n_words() -> int:
        return sum(1 for k in alive if all_tokens[k][3] != "PUNCT")

    while n_words() > max_words:
        candidates = []
        for k in alive:
            if k == root or all_tokens[k][4] not in _REMOVABLE:
                continue
            sub = subtree(k)
            if root in sub or len(sub) < 2:
                continue
            candidates.append((len([x for x in sub if all_tokens[x][3] != "PUNCT"]), k, sub))
        if not candidates:
            break
        remaining = n_words()
        fitting = [c for c in candidates if 3 <= remaining - c[0] <= max_words]
        size, _, sub = min(fitting) if fitting else max(candidates)
        if remaining - size < 3:
            break
        alive -= set(sub)
    pieces, lemmas, count, prev_end = [], [], 0, None
    for k in sorted(alive):
        a, b, lemma, pos, _, _ = all_tokens[k]
        if pos != "PUNCT":
            count += 1
            if count > max_words:
                break
            lemmas.append(lemma)
        piece = text[a - base:b - base]
        if prev_end is not None and (a > prev_end) and pos != "PUNCT":
            pieces.append(" ")
        elif prev_end is not None and pos == "PUNCT" and piece in "([“‘\"":
            pieces.append(" ")
        pieces.append(piece)
        prev_end = b
    phrase = "".join(pieces).strip()
    phrase = _TRAIL_PUNCT.sub("", _LEAD_PUNCT.sub("", phrase))
    phrase = re.sub(r"(,\s*){2,}", ", ", phrase).strip(" ,")
    if phrase:
        phrase = phrase[0].upper() + phrase[1:]
    return phrase, " ".join(lemmas)


# ---------------------------------------------------------------------------------------------
# The stage
# ---------------------------------------------------------------------------------------------

def train(stories: pd.DataFrame, sentences: pd.DataFrame, gold: pd.DataFrame, settings: Settings) -> FactorModel:
    """Fit the factor model on the gold evidence spans of the annotated stories.

    The fitted model is cached under settings.cache_dir by a fingerprint of its training data and
    parameters, so an unchanged corpus is not trained on again."""
    import hashlib

    import joblib

    from .outputs import atomic_path

    train_sentences = sentences[sentences["story_id"].isin(gold["story_id"])]
    model = FactorModel(seed=settings.seed)
    h = hashlib.sha256(repr((model.C, model.seed, model.class_weight, model.use_chars, model.signal_weight,
                             model.context_weight)).encode())
    h.update(pd.util.hash_pandas_object(train_sentences[["story_id", "start", "end", "lemmas", "heading"]],
                                        index=False).values.tobytes())
    h.update(pd.util.hash_pandas_object(gold.astype(str), index=False).values.tobytes())
    h.update((DATA_DIR / "cues.yaml").read_bytes())
    for module in (__file__, features.__file__):  # the code computing the features
        h.update(Path(module).read_bytes())
    path = Path(settings.cache_dir) / "models" / f"factors-{h.hexdigest()[:16]}.joblib"
    if path.exists():
        model = joblib.load(path)
    else:
        units = statement_units(train_sentences)
        y = unit_labels(units, gold_spans(stories, gold))
        model.fit(units, y)
        with atomic_path(path) as tmp:
            joblib.dump(model, tmp)
    model.fingerprint_ = h.hexdigest()[:16]
    return model


def extract(stories: pd.DataFrame, sentences: pd.DataFrame, model: FactorModel, nlp=None,
            themes: pd.DataFrame | None = None) -> pd.DataFrame:
    """The factors table: one row per detected statement (see FACTOR_COLUMNS)."""
    units = statement_units(sentences)
    if units.empty:
        return pd.DataFrame(columns=FACTOR_COLUMNS)
    labels, conf = model.predict(units)
    hits = units[labels != "none"].copy()
    hits["polarity"] = labels[labels != "none"]
    hits["confidence"] = conf[labels != "none"].round(3)
    theme_map = {} if themes is None else dict(zip(themes["story_id"], themes["themes"]))
    rows = []
    if "tokens" in hits.columns and hits["tokens"].astype(bool).any():
        phrases = condense_units(hits)
    else:
        phrases = condense_all(list(hits["text"]), nlp)
    for rec, (phrase, lemmas) in zip(named(hits, "Hit"), phrases):
        rows.append({"story_id": rec.story_id, "sentence_index": rec.sentence_index, "start": rec.start,
                     "end": rec.end, "polarity": rec.polarity, "confidence": rec.confidence,
                     "sentence": rec.text, "phrase": phrase, "phrase_lemmas": lemmas,
                     "themes": theme_map.get(rec.story_id, "")})
    return pd.DataFrame(rows, columns=FACTOR_COLUMNS)
