"""The Dutch spaCy pipeline: loading, gazetteer entities, and parsing stories into sentences.

`load(settings)` returns the configured pipeline: the bundled model in models/nl_rode_draad by
default, or `nl_core_news_sm` when a user has installed it and selected it (RD_SPACY_MODEL or
Settings.spacy_model). Two components are added on load:

- `rd_block_boundaries` (before the parser): a paragraph, heading or list item always starts a
  new sentence, so no sentence spans two blocks of the light-Markdown story text;
- an `entity_ruler` with REGIO (arbeidsmarktregio's and aliases), GEMEENTE (municipalities, the
  entity id is their region) and ORG (organisations), from pipeline/data/*.yaml.

`parse_stories` turns the stories table into the sentences table, parsing with `nlp.pipe` in
batches and caching each story's result by content hash, so an unchanged story is never
parsed twice.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .frames import in_story_order
from .gazetteer import load_gazetteer
from .progress import progress
from .settings import DATA_DIR, Settings, read_yaml

SENTENCE_COLUMNS = ["story_id", "sentence_index", "start", "end", "text", "block", "block_type",
                    "heading", "lemmas", "pos", "tokens"]
# `tokens`: the sentence's tokens (punctuation included, spaces excluded) as one string of
# tab-separated records "start,end,lemma,pos,dep,head" (offsets in the story text, head = index of
# the head token within the sentence, -1 for the root), so later stages need no second parse.


class ModelNotAvailable(RuntimeError):
    """Neither the bundled model nor the selected spaCy package can be loaded."""


class LemmaTables:
    """spaCy's Dutch rule-lemmatizer tables (models/lemma-tables/), read once per process."""

    _cache: dict = {}

    @classmethod
    def load(cls, folder: Path) -> dict:
        import gzip

        key = str(folder)
        if key not in cls._cache:
            tables = {}
            for name in ("exc", "index", "lookup", "rules"):
                path = Path(folder) / f"nl_lemma_{name}.json.gz"
                tables[name] = json.loads(gzip.open(path).read()) if path.exists() else {}
            tables["index"] = {pos: set(words) for pos, words in tables["index"].items()}
            cls._cache[key] = tables
        return cls._cache[key]


_REPAIR_POS = {"NOUN": "noun", "VERB": "verb", "AUX": "verb", "ADJ": "adj"}


def repair_lemma(text: str, lemma: str, pos: str, tables: dict) -> str:
    """A better lemma for a noun, verb or adjective, else `lemma`: when the trained lemmatizer left
    the word unchanged, or made a lemma that is no known Dutch word (not in the tables' word index
    or lookup), the tables' exception, lookup or suffix rules give one (when they know the word).
    Chosen on the dev split; see models/README.md."""
    low = text.lower()
    kind = _REPAIR_POS.get(pos)
    if kind is None:
        return lemma
    if lemma.lower() != low and _is_known(lemma.lower(), kind, tables):
        return lemma
    exc = tables["exc"].get(kind, {}).get(low)
    if exc:
        return exc[0]
    found = tables["lookup"].get(low)
    if found and found != low:
        return found
    index = tables["index"].get(kind, set())
    for old, new in tables["rules"].get(kind, []):
        if old and low.endswith(old):
            candidate = low[: len(low) - len(old)] + new
            if candidate in index:
                return candidate
    return lemma


# Parts of speech whose lemma is lower case in UD Dutch even when the word is capitalised at the start
# of a sentence (nouns also elsewhere, as in headings); adjectives only at the start, since proper
# adjectives keep their capital (Vlaams, Europees).
_LOWER_LEMMA_POS = {"NOUN", "VERB", "ADV", "ADP", "DET", "PRON", "AUX", "CCONJ", "SCONJ", "NUM", "INTJ"}


def lemma_case(lemma: str, pos: str, sentence_start: bool) -> str:
    """`lemma` with its capital removed where UD Dutch writes the lemma in lower case: a
    capitalised (not all-caps) lemma of a common word at the start of a sentence, or of a noun.
    Chosen on the dev split; see models/README.md."""
    if len(lemma) < 2 or not lemma[0].isupper() or not lemma[1:].islower():
        return lemma
    if pos in _LOWER_LEMMA_POS and (sentence_start or pos == "NOUN") or (pos == "ADJ" and sentence_start):
        return lemma[0].lower() + lemma[1:]
    return lemma


def _is_known(word: str, kind: str, tables: dict) -> bool:
    if "lookup_values" not in tables:
        tables["lookup_values"] = set(tables["lookup"].values())
    return word in tables["index"].get(kind, set()) or word in tables["lookup_values"]


def _register_components():
    import spacy
    from spacy.language import Language

    if "rd.TokenizerFromDisk.v1" not in spacy.registry.tokenizers:
        @spacy.registry.tokenizers("rd.TokenizerFromDisk.v1")
        def tokenizer_from_disk():
            """A tokenizer without rules, for a pipeline whose saved tokenizer brings all of its
            own (prefixes, suffixes, infixes, ~4,700 exceptions). spaCy's default factory would
            first build the language's rules and exceptions, only for `from_disk` to replace them:
            about 0.7 s of every load. The loaded tokenizer is byte-identical (tested)."""
            from spacy.tokenizer import Tokenizer

            return lambda nlp: Tokenizer(nlp.vocab)

    if not Language.has_factory("rd_lemma_repair"):
        @Language.factory("rd_lemma_repair", default_config={"tables_dir": ""})
        def make_lemma_repair(nlp, name, tables_dir: str):
            tables = LemmaTables.load(Path(tables_dir))

            def lemma_repair(doc):
                for token in doc:
                    lemma = repair_lemma(token.text, token.lemma_, token.pos_, tables)
                    token.lemma_ = lemma_case(lemma, token.pos_, token.i == 0 or bool(token.is_sent_start))
                return doc

            return lemma_repair

    if not Language.has_factory("rd_block_boundaries"):
        @Language.component("rd_block_boundaries")
        def block_boundaries(doc):
            """Start a sentence after every blank line (paragraph, heading or list item)."""
            for i, token in enumerate(doc[:-1]):
                if "\n\n" in token.text or "\n\n" in token.whitespace_:
                    doc[i + 1].is_sent_start = True
            return doc


# Domain words the tokenizer must keep whole (added on load, so they hold for any Dutch pipeline).
TOKENIZER_EXCEPTIONS = [
    "mbo-1", "mbo-2", "mbo-3", "mbo-4", "Mbo-1", "Mbo-2", "MBO-1", "MBO-2", "wsp's", "Wsp's", "WSP's", "RMT's", "rmt's",
    "ROC's", "roc's", "W&I", "w&i", "'s-Hertogenbosch", "’s-Hertogenbosch", "'s-Gravenhage", "bijv.", "Bijv.",
    "o.a.", "m.b.v.", "i.s.m.", "t.b.v.", "d.w.z.", "e.d.", "z.g.a.n.", "cv's", "cv’s", "wsp’s", "RMT’s", "ROC’s",
]


def add_tokenizer_exceptions(nlp) -> None:
    from spacy.symbols import ORTH

    for text in TOKENIZER_EXCEPTIONS:
        nlp.tokenizer.add_special_case(text, [{ORTH: text}])


def model_choice(settings: Settings) -> str | Path:
    """What `load` will load: a path (bundled or custom) or a package name."""
    choice = settings.spacy_model
    if choice == "bundled":
        return settings.bundled_model_dir
    if choice == "nl_core_news_sm" or importlib.util.find_spec(choice.replace("-", "_")) is not None:
        return choice
    return Path(choice)


def load(settings: Settings, *, with_entities: bool = True):
    """Load the configured Dutch pipeline, with block boundaries and gazetteer entities added."""
    import spacy

    _register_components()
    choice = model_choice(settings)
    if isinstance(choice, Path):
        if not (choice / "config.cfg").exists():
            raise ModelNotAvailable(
                f"No Dutch spaCy pipeline found at {choice}. Either restore the bundled model "
                f"(models/nl_rode_draad, retrain it with `make model`), or install nl_core_news_sm "
                f"(`pip install nl_core_news_sm`) and select it with RD_SPACY_MODEL=nl_core_news_sm.")
        fast = {"nlp": {"tokenizer": {"@tokenizers": "rd.TokenizerFromDisk.v1"}}}
        nlp = spacy.load(choice, config=fast if (choice / "tokenizer").exists() else {})
    else:
        if importlib.util.find_spec(choice) is None:
            raise ModelNotAvailable(
                f"The spaCy package {choice!r} is selected but not installed. Install it "
                f"(`pip install {choice}`), or use the bundled model in models/nl_rode_draad "
                f"(RD_SPACY_MODEL=bundled, the default).")
        nlp = spacy.load(choice)
    add_tokenizer_exceptions(nlp)
    tables_dir = settings.models_dir / "lemma-tables"
    if tables_dir.exists() and "trainable_lemmatizer" in nlp.pipe_names:  # after the parser: it uses sentence starts
        nlp.add_pipe("rd_lemma_repair", after="parser" if "parser" in nlp.pipe_names else "trainable_lemmatizer",
                     config={"tables_dir": str(tables_dir)})
    if "parser" in nlp.pipe_names:
        nlp.add_pipe("rd_block_boundaries", before="parser")
    elif "senter" in nlp.pipe_names:
        nlp.add_pipe("rd_block_boundaries", before="senter")
    else:
        nlp.add_pipe("rd_block_boundaries", first=True)
    if with_entities:
        add_gazetteer_entities(nlp, settings)
    return nlp


def gazetteer_patterns(settings: Settings) -> list[dict]:
    """Entity-ruler patterns for REGIO, GEMEENTE and ORG from the data files."""
    gaz = load_gazetteer(settings.regions_file)
    patterns: list[dict] = []
    data = read_yaml(settings.regions_file)
    seen = set()
    for entry in data["regions"]:
        for name in [entry["name"], *entry.get("aliases", [])]:
            # a municipality's own name is a GEMEENTE, unless it is the region's canonical name
            if name in seen or (name in gaz.municipalities and name != entry["name"]):
                continue
            seen.add(name)
            patterns.append({"label": "REGIO", "pattern": name, "id": entry["name"]})
    for muni, regions in gaz.municipalities.items():
        if muni in seen:
            continue  # e.g. Amersfoort, Groningen: the region's own name, tagged REGIO
        rid = regions[0] if len(regions) == 1 else ""
        if muni in gaz.ambiguous:
            patterns.append({"label": "GEMEENTE", "pattern": [{"LOWER": "gemeente"}, {"ORTH": muni}], "id": rid})
        else:
            patterns.append({"label": "GEMEENTE", "pattern": muni, "id": rid})
    orgs = read_yaml(DATA_DIR / "organisations.yaml")
    for name in orgs.get("generic", []) + orgs.get("named", []):
        patterns.append({"label": "ORG", "pattern": name})
    return patterns


def add_gazetteer_entities(nlp, settings: Settings):
    """Add (or replace) the entity ruler with the gazetteer patterns; returns the ruler."""
    if "entity_ruler" in nlp.pipe_names:
        nlp.remove_pipe("entity_ruler")
    config = {"phrase_matcher_attr": "ORTH", "overwrite_ents": True}
    ruler = nlp.add_pipe("entity_ruler", config=config, last=True)
    # phrase patterns match on ORTH, so only the tokenizer must see them; left alone, the ruler
    # would run every component before it over ~500 pattern texts on each load
    with nlp.select_pipes(enable=["entity_ruler"]):
        ruler.add_patterns(gazetteer_patterns(settings))
    return ruler


PARSE_FORMAT = 3  # bump when doc_to_sentences changes what it stores (this file is hashed too)


def model_fingerprint(settings: Settings) -> str:
    """Identifies the configured pipeline and everything added on load, without loading it, so
    that a run whose stories are all cached never loads spaCy."""
    h = hashlib.sha256(f"{PARSE_FORMAT}|{TOKENIZER_EXCEPTIONS}".encode())
    h.update(Path(__file__).read_bytes())  # the components added on load and what is stored per sentence
    choice = model_choice(settings)
    if isinstance(choice, Path):
        for name in ("meta.json", "config.cfg"):
            path = choice / name
            h.update(path.read_bytes() if path.exists() else b"missing")
    else:
        from importlib.metadata import PackageNotFoundError, version

        try:
            h.update(f"{choice}=={version(choice)}".encode())
        except PackageNotFoundError:
            h.update(choice.encode())
    for path in (settings.regions_file, DATA_DIR / "organisations.yaml"):
        h.update(Path(path).read_bytes())
    tables = settings.models_dir / "lemma-tables"
    h.update(str(sorted(p.name for p in tables.glob("*.gz")) if tables.exists() else []).encode())
    return h.hexdigest()[:12]


# ---------------------------------------------------------------------------------------------
# Stories -> sentences
# ---------------------------------------------------------------------------------------------

_MARKER = re.compile(r"^(## |- )")


_OPENING = "“‘„\"'(["
_CLOSING = "”’\"')]"
_TERMINAL = ".!?…:"
_ABBREVIATION = re.compile(r"(?<!\w)(bijv|o\.a|m\.b\.v|i\.s\.m|t\.b\.v|d\.w\.z|e\.d|ca|incl|excl|nr|dhr|mevr|mr|dr|ir|drs|ing|prof|st|jl|vgl|zgn|resp)\.$", re.I)


def repair_boundaries(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Join the pieces of one sentence that the statistical splitter cut apart, within a line.

    The bundled model (sentence F 81 on UD test) cuts practice stories at quote marks and before
    lower-case words: `“` and `”` end up alone, "Klantmanager Dilara" and "Yilmaz zegt ..." become
    two sentences. A piece is joined to the one before it (never across a line break) when
      - either piece has no letter or digit (a stray quote mark or bracket),
      - the one before does not end a sentence (., !, ?, ..., or :, possibly followed by a closing
        quote or bracket), or ends in an abbreviation (bijv., o.a., dr.),
      - the piece starts with a lower-case letter and the one before ends in a quote mark, comma,
        question or exclamation mark ("“Wat nu?” vraagt ze.").
    """
    out: list[list[int]] = []
    for start, end in spans:
        # a closing quote the splitter put at the start of this piece ends the one before
        while out and start + 1 < end and text[start] in "”’)]" and text[start + 1].isspace() \
                and "\n" not in text[out[-1][1]:start]:
            out[-1][1] = start + 1
            start += 1
            while start < end and text[start].isspace():
                start += 1
        if out:
            prev_start, prev_end = out[-1]
            prev, piece = text[prev_start:prev_end], text[start:end]
            if "\n" not in text[prev_end:start] and _joins(prev, piece):
                out[-1][1] = end
                continue
        out.append([start, end])
    return [(a, b) for a, b in out]


def _joins(prev: str, piece: str) -> bool:
    if not any(c.isalnum() for c in piece):  # a stray mark: a closing one ends prev, an opening one starts the next
        return not all(c in _OPENING or c.isspace() for c in piece)
    if not any(c.isalnum() for c in prev):
        return True
    core = prev.rstrip(_CLOSING + " ")
    if not core or core[-1] not in _TERMINAL or _ABBREVIATION.search(core):
        return True
    return piece[0].islower() and prev[-1] in _CLOSING + ",?!"


def doc_to_sentences(doc, story_id: str) -> list[dict]:
    """One record per sentence: offsets in the story text, block and heading context, lemmas.

    Sentences are the pipeline's, trimmed of whitespace, repaired (`repair_boundaries`) and then
    stripped of the list or heading marker that opens their block."""
    text = doc.text
    spans = []
    for sent in doc.sents:
        start, end = sent.start_char, sent.end_char
        # trim whitespace
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        # an opening quote that the splitter left at the end belongs to the next sentence
        while end > start + 1 and text[end - 1] in "“‘„\"'" and text[end - 2].isspace():
            end -= 1
            while end > start and text[end - 1].isspace():
                end -= 1
        if start < end:
            spans.append((start, end))
    records = []
    heading = ""
    block_index = -1
    last_block_start = -1
    for start, end in repair_boundaries(text, spans):
        block_start = text.rfind("\n\n", 0, start)
        block_start = 0 if block_start < 0 else block_start + 2
        marker = _MARKER.match(text[start:end])
        if marker and start == block_start:
            start += len(marker.group(1))
        if block_start != last_block_start:
            block_index += 1
            last_block_start = block_start
        block_text = text[block_start:block_start + 3]
        block_type = "heading" if block_text.startswith("## ") else "bullet" if block_text.startswith("- ") else "paragraph"
        if block_type == "heading":
            heading = text[start:end]
        window = doc.char_span(start, end, alignment_mode="expand") or doc
        all_tokens = [t for t in window if not t.is_space and start <= t.idx < end]
        tokens = [t for t in all_tokens if not t.is_punct]
        position = {t.i: k for k, t in enumerate(all_tokens)}
        token_records = "\t".join(
            f"{t.idx},{t.idx + len(t.text)},{(t.lemma_ or t.text).lower().replace(',', ' ').replace(chr(9), ' ')},"
            f"{t.pos_ or 'X'},{t.dep_ or 'dep'},{position.get(t.head.i, -1) if t.head.i != t.i else -1}"
            for t in all_tokens)
        records.append({
            "story_id": story_id,
            "sentence_index": len(records),
            "start": start,
            "end": end,
            "text": text[start:end],
            "block": block_index,
            "block_type": block_type,
            "heading": heading if block_type != "heading" else "",
            "lemmas": " ".join((t.lemma_ or t.text).lower() for t in tokens),
            "pos": " ".join(t.pos_ or "X" for t in tokens),
            "tokens": token_records,
        })
    return records


@dataclass
class ParseStats:
    parsed: int = 0
    cached: int = 0
    words: int = 0


class SentenceStore:
    """The parse cache: sentence rows of parsed stories, by content hash, in a few parquet
    segments (one per batch of stories parsed), so that reading 10,000 cached stories is a
    few file reads rather than 10,000. Segments are written atomically; when there are more
    than `max_segments`, the small ones are merged (see `compact`)."""

    def __init__(self, folder: Path, max_segments: int = 24):
        self.folder = Path(folder)
        self.max_segments = max_segments

    def segments(self) -> list[Path]:
        return sorted(self.folder.glob("seg-*.parquet"))

    def index(self) -> dict[str, Path]:
        """content hash -> the segment holding its sentences."""
        import pyarrow.parquet as pq

        out: dict[str, Path] = {}
        for seg in self.segments():
            try:
                hashes = pq.read_table(seg, columns=["content_hash"]).column(0).unique().to_pylist()
            except Exception:  # a damaged segment is ignored (its stories are parsed again)
                continue
            out.update(dict.fromkeys(hashes, seg))
        return out

    def read(self, hashes: set[str], index: dict[str, Path]) -> pd.DataFrame:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        tables = []
        for seg in sorted({index[h] for h in hashes if h in index}):
            table = pq.read_table(seg)
            tables.append(table.filter(pc.is_in(table["content_hash"], pa.array(sorted(hashes)))))
        if not tables:
            return pd.DataFrame(columns=[*SENTENCE_COLUMNS, "content_hash"])
        return pa.concat_tables(tables).to_pandas()

    def write(self, frames: list[pd.DataFrame]) -> Path | None:
        from .outputs import write_parquet

        if not frames:
            return None
        data = pd.concat(frames, ignore_index=True)
        name = hashlib.sha256("\n".join(sorted(set(data["content_hash"]))).encode()).hexdigest()[:16]
        return write_parquet(self.folder / f"seg-{name}.parquet", data)

    def compact(self) -> None:
        """When there are too many segments (each re-run adds a small one), merge the small ones
        (under a quarter of the largest on disk) into one; all of them if fewer than two are
        small. The large segments are left alone, so a compaction costs little on a big cache."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        segs = self.segments()
        if len(segs) <= self.max_segments:
            return
        sizes = {s: s.stat().st_size for s in segs}
        small = [s for s in segs if sizes[s] * 4 < max(sizes.values())]
        merge = small if len(small) >= 2 else segs
        frame = pa.concat_tables([pq.read_table(s) for s in merge]).to_pandas()
        merged = self.write([frame.drop_duplicates(["content_hash", "sentence_index"])])
        for seg in merge:
            if seg != merged:
                seg.unlink(missing_ok=True)


def parse_stories(stories: pd.DataFrame, settings: Settings, nlp=None, cache_dir: Path | None = None,
                  stats: ParseStats | None = None, segment_size: int = 1000) -> pd.DataFrame:
    """Parse every story into the sentences table (see SENTENCE_COLUMNS), using the cache.

    `nlp` may be a loaded pipeline, a callable returning one (loaded only when a story is not in
    the cache), or None (load the configured pipeline when needed). Newly parsed stories are
    stored every `segment_size` stories, so an interrupted run keeps most of its work."""
    stats = stats if stats is not None else ParseStats()
    store = SentenceStore(Path(cache_dir or settings.cache_dir / "sentences") / model_fingerprint(settings))
    store.folder.mkdir(parents=True, exist_ok=True)
    index = store.index()
    hashes = set(stories["content_hash"])
    cached = store.read(hashes & set(index), index)
    frames: list[pd.DataFrame] = []
    if len(cached):
        ids = stories[["story_id", "content_hash"]]
        cached = ids.merge(cached.drop(columns="story_id"), on="content_hash", how="inner")
        frames.append(cached)
        stats.cached += int(cached["story_id"].nunique())
    todo = [(sid, text, h) for sid, text, h in zip(stories["story_id"], stories["text"], stories["content_hash"])
            if h not in index]
    if todo:
        if nlp is None:
            nlp = load(settings)
        elif callable(nlp) and not hasattr(nlp, "pipe"):
            nlp = nlp()
    texts = ((text, (sid, h)) for sid, text, h in todo)
    processes = settings.nlp_processes if len(todo) >= 4 * settings.nlp_batch_size else 1
    docs = nlp.pipe(texts, as_tuples=True, batch_size=settings.nlp_batch_size, n_process=processes) if todo else []
    pending: list[pd.DataFrame] = []
    for doc, (sid, h) in progress(docs, "parse", enabled=settings.progress, total=len(todo)):
        frame = pd.DataFrame(doc_to_sentences(doc, sid), columns=SENTENCE_COLUMNS).assign(content_hash=h)
        pending.append(frame)
        frames.append(frame)
        stats.parsed += 1
        stats.words += sum(1 for t in doc if not t.is_space and not t.is_punct)
        if len(pending) >= segment_size:
            store.write(pending)
            pending = []
    store.write(pending)
    if todo:
        store.compact()
    if not frames:
        return pd.DataFrame(columns=SENTENCE_COLUMNS)
    out = in_story_order(pd.concat(frames, ignore_index=True), stories["story_id"], within="sentence_index")
    return out[SENTENCE_COLUMNS]
