"""Stage 1: story files -> the stories table, and the bad-input report.

Reads a folder (recursively) of Markdown with YAML front matter, plain text, HTML and Word
.docx files, or CSV/JSONL exports with the columns id,title,date,region,text. Every problem
with a file becomes one `Problem` (file, story id, severity, message, action); the run always
continues with the rest. Input files are only ever read, never modified.

The text of a story is normalised to a light Markdown: paragraphs separated by a blank line,
headings as `## ...` lines, list items as `- ...` lines; Unicode NFC, whitespace and
end-of-line hyphenation repaired.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import yaml

from .gazetteer import Gazetteer, load_gazetteer
from .progress import progress
from .settings import Settings

STORY_SUFFIXES = {".md", ".markdown", ".txt", ".html", ".htm", ".docx"}
TABLE_SUFFIXES = {".csv", ".jsonl"}
IGNORED_NAMES = {"readme.md", ".ds_store", "thumbs.db"}

STORY_COLUMNS = [
    "story_id", "title", "date", "region", "region_inferred", "organisations", "source",
    "text", "n_words", "content_hash", "language", "dutch_share", "format", "path",
]


@dataclass
class Problem:
    """One line of the ingest report."""

    path: str
    story_id: str
    severity: str  # "error" (story skipped) or "warning" (story kept)
    problem: str
    action: str  # "skipped" or "kept"

    def line(self) -> str:
        who = f"{self.path}" + (f" [{self.story_id}]" if self.story_id else "")
        return f"{self.severity.upper():7} {who}: {self.problem} ({self.action})"


@dataclass
class RawStory:
    """A story as read from its file, before validation."""

    path: str
    fmt: str
    text: str
    meta: dict = field(default_factory=dict)
    fallback_id: str = ""
    problems: list[str] = field(default_factory=list)  # warnings found while reading


class SkipFile(Exception):
    """Raised by a reader when a whole file cannot be used; the message says why."""


# ---------------------------------------------------------------------------------------------
# Reading bytes and decoding
# ---------------------------------------------------------------------------------------------

def decode_bytes(data: bytes) -> tuple[str, str | None]:
    """Decode file bytes as UTF-8 (with or without BOM), else cp1252.

    Returns (text, warning or None). Raises SkipFile for binary data or undecodable bytes.
    """
    if not data.strip():
        raise SkipFile("empty file")
    if b"\x00" in data[:8192]:
        raise SkipFile("binary file (contains NUL bytes), not text")
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        utf8_error = exc
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        raise SkipFile(f"not valid UTF-8 ({utf8_error.reason} at byte {utf8_error.start}) "
                       "and not cp1252 either") from None
    controls = sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\r\n\t\f")
    if controls > max(3, len(text) // 200):
        raise SkipFile("binary file (many control characters), not text")
    return text, "not UTF-8: decoded as Windows-1252 (cp1252); save it as UTF-8 to silence this"


# ---------------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------------

_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"), None)
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^\s*(?:[-*+\u2022\u2013\u25aa\u25cf]|\d{1,2}[.)])\s+(.*)$")
# "arbeids-\nmarkt" -> "arbeidsmarkt", but keep "werkgevers-\nen werkzoekenden" (elliptic compound)
_HYPHEN_BREAK = re.compile(r"(\w)-\n(?!(?:en|of|tot|noch|als)\b)([a-zà-ÿ])")
_INLINE_MD = [
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # images -> alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links -> link text
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # bold
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"), r"\1"),  # italic *x*
    (re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])"), r"\1"),  # italic _x_
    (re.compile(r"`([^`]+)`"), r"\1"),  # code
]


def strip_inline_markdown(line: str) -> str:
    for pattern, repl in _INLINE_MD:
        line = pattern.sub(repl, line)
    return line


def normalise_text(text: str, *, markdown: bool = True) -> str:
    """Normalise a story body to the light Markdown used throughout the pipeline.

    - Unicode NFC; soft hyphens and zero-width characters removed; all spaces to one space.
    - Line breaks inside a paragraph (hard-wrapped text) joined; a word broken with a hyphen at
      the end of a line is rejoined, an elliptic compound ("werkgevers- en ...") is kept.
    - Headings (Markdown `#`, or a short line followed by a blank line and ending without
      punctuation in plain text is left alone) become `## Heading`; list items become `- item`.
    - With markdown=True, inline emphasis, links and images are reduced to their text.
    """
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n\n")
    text = _HYPHEN_BREAK.sub(r"\1\2", text)
    blocks: list[str] = []
    para: list[str] = []

    def flush():
        if para:
            blocks.append(" ".join(para))
            para.clear()

    for raw in text.split("\n"):
        line = _SPACES.sub(" ", raw).strip()
        if not line:
            flush()
            continue
        if markdown and re.fullmatch(r"[-*_=]{3,}", line):  # horizontal rule / setext underline
            flush()
            continue
        heading = _HEADING.match(line) if markdown else None
        bullet = _BULLET.match(line)
        if heading:
            flush()
            blocks.append("## " + (strip_inline_markdown(heading.group(2)) if markdown else heading.group(2)))
        elif bullet:
            flush()
            item = bullet.group(1).strip()
            blocks.append("- " + (strip_inline_markdown(item) if markdown else item))
        elif blocks and blocks[-1].startswith("- ") and not para and raw[:1] in " \t":
            blocks[-1] += " " + (strip_inline_markdown(line) if markdown else line)  # continued item
        else:
            para.append(strip_inline_markdown(line) if markdown else line)
    flush()
    return "\n\n".join(b for b in blocks if b.strip("#- "))


def count_words(text: str) -> int:
    return len(re.findall(r"\w+(?:[-'’]\w+)*", text))


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Language detection (function-word profile; no model download needed)
# ---------------------------------------------------------------------------------------------

_FUNCTION_WORDS = {
    "nl": "de het een en van in is dat op te zijn met voor niet aan er om ook als bij of door "
          "maar naar dan wordt nog wel uit worden hun heeft hebben zij wij ze we geen werd over "
          "kan moet deze die dit waar zo al meer veel omdat wat hoe wie jongeren werk gemeente".split(),
    "en": "the and of to in is that for it with as was on are be by this have from or an not "
          "but they which we you their has were been more can will would there what about who "
          "our work people".split(),
    "de": "der die und den das von zu mit sich des auf für ist im dem nicht ein eine als auch "
          "es an werden aus er hat dass sie nach wird bei einer um noch wie über so zum".split(),
    "fr": "le la les de des et en du un une est que pour dans qui pas sur au par plus ne se "
          "avec il ce sont mais ou nous vous leur".split(),
}
# a word that is a function word in several languages ('de', 'in', 'die') says nothing: drop it
_FW_SETS = {lang: set(words) - {w for other, ws in _FUNCTION_WORDS.items() if other != lang for w in ws}
            for lang, words in _FUNCTION_WORDS.items()}


def detect_language(text: str) -> tuple[str, float]:
    """Guess the language of `text` from its function words.

    Returns (language code or 'unknown', share of the recognised function words that are
    Dutch). Words shared between the languages' lists ('de', 'in') are not counted.
    """
    words = re.findall(r"[a-zà-ÿ]+", text.lower())
    hits = {lang: sum(1 for w in words if w in fw) for lang, fw in _FW_SETS.items()}
    total = sum(hits.values())
    if total < 5:
        return "unknown", 0.0
    best = max(hits, key=hits.get)
    # Dutch share among Dutch + the strongest other language
    other = max(v for k, v in hits.items() if k != "nl")
    share = hits["nl"] / (hits["nl"] + other) if hits["nl"] + other else 0.0
    return best, round(share, 3)


# ---------------------------------------------------------------------------------------------
# Readers, one per format. Each yields RawStory objects or raises SkipFile.
# ---------------------------------------------------------------------------------------------

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)", re.S)


def split_front_matter(text: str) -> tuple[dict, str, str | None]:
    """Split Markdown into (front matter dict, body, problem or None)."""
    match = _FRONT_MATTER.match(text)
    if not match:
        if text.startswith("---\n"):
            return {}, text, "front matter not closed with '---'; metadata ignored"
        return {}, text, None
    body = text[match.end():]
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 2})" if where is not None else ""
        return {}, body, f"front matter is not valid YAML{at}; metadata ignored"
    if not isinstance(meta, dict):
        return {}, body, "front matter is not a key: value mapping; metadata ignored"
    return meta, body, None


def read_markdown(path: Path, text: str) -> Iterator[RawStory]:
    meta, body, problem = split_front_matter(text)
    story = RawStory(str(path), "markdown", normalise_text(body), meta, path.stem)
    if problem:
        story.problems.append(problem)
    if not story.meta.get("title"):
        first = next((b for b in story.text.split("\n\n") if b.startswith("# ") or b.startswith("## ")), "")
        if first:
            story.meta["title"] = first.lstrip("# ").strip()
    yield story


def read_plain_text(path: Path, text: str) -> Iterator[RawStory]:
    norm = normalise_text(text, markdown=False)
    title, _, rest = norm.partition("\n\n")
    if not rest:  # the title is the first line, even without a blank line after it
        lines = text.strip().split("\n", 1)
        title, rest = lines[0].strip(), normalise_text(lines[1] if len(lines) > 1 else "", markdown=False)
    yield RawStory(str(path), "text", rest, {"title": title.lstrip("#- ").strip()}, path.stem)


def read_html(path: Path, text: str) -> Iterator[RawStory]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    meta: dict = {}
    for tag in soup.find_all("meta"):
        name = (tag.get("name") or tag.get("property") or "").lower().split(":")[-1]
        if name in {"date", "region", "id", "source", "organisations", "title"} and tag.get("content"):
            meta[name] = tag["content"]
    if "title" not in meta:
        h1 = soup.find("h1")
        if h1 and h1.get_text(strip=True):
            meta["title"] = h1.get_text(" ", strip=True)
        elif soup.title and soup.title.get_text(strip=True):
            meta["title"] = soup.title.get_text(" ", strip=True)
    for tag in soup(["script", "style", "noscript", "nav", "header", "footer", "aside", "form",
                     "iframe", "svg", "button", "template"]):
        tag.decompose()
    root = soup.find("article") or soup.find("main") or soup.body or soup
    blocks: list[str] = []
    for el in root.find_all(["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "blockquote", "pre", "td"]):
        if el.find_parent(["li", "blockquote"]) is not None and el.name != "li":
            continue  # text already taken with its list item or quote
        if el.name in {"p", "td"} and el.find(["p", "li"]):
            continue
        content = el.get_text(" ", strip=True)
        if not content:
            continue
        if el.name == "h1" and content == meta.get("title"):
            continue
        if el.name[0] == "h":
            blocks.append("## " + content)
        elif el.name == "li":
            blocks.append("- " + content)
        else:
            blocks.append(content)
    if not blocks:  # no block elements: take all text
        blocks = [root.get_text("\n", strip=True)]
    yield RawStory(str(path), "html", normalise_text("\n\n".join(blocks), markdown=False), meta, path.stem)


def read_docx(path: Path, data: bytes) -> Iterator[RawStory]:
    import docx  # python-docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError, OSError) as exc:
        raise SkipFile(f"not a readable Word .docx file ({type(exc).__name__})") from None
    except Exception as exc:  # zipfile.BadZipFile, lxml errors: a damaged file
        raise SkipFile(f"damaged Word .docx file ({type(exc).__name__}: {exc})") from None
    meta: dict = {}
    props = document.core_properties
    if props.title:
        meta["title"] = props.title
    blocks = []
    for para in document.paragraphs:
        content = para.text.strip()
        if not content:
            continue
        style = (para.style.name if para.style is not None else "").lower()
        if style == "title" and "title" not in meta:
            meta["title"] = content
        elif style.startswith("heading") or style == "title":
            if style.startswith("heading 1") and "title" not in meta:
                meta["title"] = content
            else:
                blocks.append("## " + content)
        elif "list" in style:
            blocks.append("- " + content)
        else:
            blocks.append(content)
    # front matter typed as the first lines of the document ("date: 2024-03-01") is honoured
    while blocks and re.match(r"^(id|date|datum|region|regio|organisations|source)\s*:", blocks[0], re.I):
        key, _, value = blocks.pop(0).partition(":")
        key = {"datum": "date", "regio": "region"}.get(key.strip().lower(), key.strip().lower())
        meta[key] = value.strip()
    yield RawStory(str(path), "docx", normalise_text("\n\n".join(blocks), markdown=False), meta, path.stem)


def read_table(path: Path, text: str) -> Iterator[RawStory]:
    """A CSV or JSONL export: one story per row with columns id,title,date,region,text."""
    rows: list[tuple[int, dict]] = []
    if path.suffix.lower() == ".csv":
        try:
            sample = text[:4096]
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\t") if sample.count("\n") else csv.excel
        except csv.Error:
            dialect = csv.excel
        reader = csv.DictReader(io.StringIO(text), dialect=dialect)
        if reader.fieldnames is None or "text" not in [f.strip().lower() for f in reader.fieldnames]:
            raise SkipFile("CSV export has no 'text' column (expected id,title,date,region,text)")
        for i, row in enumerate(reader, start=2):
            rows.append((i, {(k or "").strip().lower(): v for k, v in row.items()}))
    else:
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                rows.append((i, {"__error__": f"invalid JSON ({exc.msg})"}))
                continue
            rows.append((i, row if isinstance(row, dict) else {"__error__": "line is not a JSON object"}))
    if not rows:
        raise SkipFile("export contains no rows")
    for line_no, row in rows:
        where = f"{path}:{line_no}"
        if "__error__" in row:
            story = RawStory(where, "table", "", {}, f"{path.stem}-{line_no}")
            story.problems.append("SKIP:" + row["__error__"])
            yield story
            continue
        meta = {k: row.get(k) for k in ("id", "title", "date", "region", "organisations", "source") if row.get(k)}
        body = str(row.get("text") or "")
        yield RawStory(where, "table", normalise_text(body), meta, f"{path.stem}-{line_no}")


def iter_input_files(folder: Path) -> list[Path]:
    """All candidate files under `folder`, in a stable order; hidden files and folders skipped, linked
    folders not entered."""
    folder = Path(folder)
    if folder.is_file():
        return [folder]
    found: list[tuple[str, ...]] = []  # path parts: sorting them gives Path order, faster

    def walk(where: str, parts: tuple[str, ...]) -> None:
        with os.scandir(where) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue  # hidden files and folders
                if entry.is_dir(follow_symlinks=False):  # a linked folder is not entered (no loops)
                    walk(entry.path, parts + (entry.name,))
                elif entry.is_file() and not entry.name.startswith("~$") and entry.name.lower() not in IGNORED_NAMES:
                    found.append(parts + (entry.name,))

    walk(str(folder), ())
    return [folder.joinpath(*parts) for parts in sorted(found)]


def read_file(path: Path, settings: Settings) -> list[RawStory]:
    """Read one file into raw stories. Raises SkipFile when the file cannot be used at all."""
    suffix = path.suffix.lower()
    if suffix not in STORY_SUFFIXES | TABLE_SUFFIXES:
        raise SkipFile(f"unsupported file type '{suffix or path.name}' "
                       "(expected .md, .txt, .html, .docx, .csv or .jsonl)")
    size = path.stat().st_size
    limit = settings.max_file_bytes * (50 if suffix in TABLE_SUFFIXES else 1)
    if size > limit:
        raise SkipFile(f"file too large ({size / 1e6:.1f} MB; limit {limit / 1e6:.1f} MB)")
    data = path.read_bytes()
    if suffix == ".docx":
        if not data.strip():
            raise SkipFile("empty file")
        return list(read_docx(path, data))
    text, warning = decode_bytes(data)
    reader = {".md": read_markdown, ".markdown": read_markdown, ".txt": read_plain_text,
              ".html": read_html, ".htm": read_html, ".csv": read_table, ".jsonl": read_table}[suffix]
    stories = list(reader(path, text))
    if warning:
        for s in stories:
            s.problems.insert(0, warning)
    return stories


# ---------------------------------------------------------------------------------------------
# Validation of metadata
# ---------------------------------------------------------------------------------------------

_MONTHS = {m: i for i, m in enumerate(
    "januari februari maart april mei juni juli augustus september oktober november december".split(), 1)}
_MONTHS.update({m[:3]: i for m, i in list(_MONTHS.items())})


def parse_date(value) -> date | None:
    """Read a story date: ISO, 15-03-2021, 15/03/2021, '15 maart 2021', 'maart 2021' or '2021'."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip().lower()
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        pass
    m = re.fullmatch(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})", text)
    if m:
        d, mo, y = map(int, m.groups())
        try:
            return date(y, mo, d)
        except ValueError:
            return None
    m = re.fullmatch(r"(?:(\d{1,2})\s+)?([a-z]+)\.?\s+(\d{4})", text)
    if m and m.group(2) in _MONTHS:
        try:
            return date(int(m.group(3)), _MONTHS[m.group(2)], int(m.group(1) or 1))
        except ValueError:
            return None
    if re.fullmatch(r"(19|20)\d\d", text):
        return date(int(text), 1, 1)
    return None


_ID_CLEAN = re.compile(r"[^a-z0-9]+")


def clean_id(value: str) -> str:
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode().lower()
    return _ID_CLEAN.sub("-", text).strip("-")


def _as_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in re.split(r"[;,]", str(value)) if v.strip()]


# ---------------------------------------------------------------------------------------------
# Near-duplicate detection: MinHash over word 5-gram shingles with LSH banding (no O(n^2))
# ---------------------------------------------------------------------------------------------

_N_PERM, _BANDS = 64, 16
_MERSENNE = (1 << 61) - 1


def _shingles(text: str, k: int = 5) -> set[int]:
    words = re.findall(r"\w+", text.lower())
    k = min(k, len(words))
    if not k:
        return set()
    return {int.from_bytes(hashlib.blake2b(" ".join(words[i:i + k]).encode(), digest_size=8).digest(), "little")
            for i in range(len(words) - k + 1)}


def _minhash_params(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.integers(1, _MERSENNE, _N_PERM, dtype=np.uint64), rng.integers(0, _MERSENNE, _N_PERM, dtype=np.uint64))


def minhash_signature(text: str, seed: int = 1) -> np.ndarray:
    """The MinHash signature (_N_PERM values) of a text's word 5-gram shingles; empty when the
    text has no words. Cached with the ingested story, so a re-run only computes new ones."""
    sh = _shingles(text)
    if not sh:
        return np.zeros(0, dtype=np.uint64)
    a, b = _minhash_params(seed)
    x = np.fromiter(sh, dtype=np.uint64) % np.uint64(_MERSENNE)
    # (a*x + b) mod p, computed in float-free uint64 arithmetic with wrap-around is fine for hashing
    return ((np.outer(a, x) + b[:, None]) % np.uint64(_MERSENNE)).min(axis=1)


def near_duplicate_pairs(texts: list[str], threshold: float, seed: int = 1,
                         signatures: list[np.ndarray] | None = None) -> list[tuple[int, int, float]]:
    """Pairs (i, j, jaccard) with i < j whose shingle Jaccard similarity is >= threshold.

    Candidates come from MinHash LSH (bands of the signatures, passed in when precomputed);
    candidates whose estimated similarity is far below the threshold are dropped, the rest are
    compared exactly. The cost grows with n, not n squared."""
    if signatures is None:
        signatures = [minhash_signature(t, seed) for t in texts]
    rows = _N_PERM // _BANDS
    ok = np.array([i for i, sig in enumerate(signatures) if len(sig) == _N_PERM], dtype=np.int64)
    candidates = set()
    if len(ok) > 1:
        sigs = np.stack([signatures[i] for i in ok]).astype(np.uint64)
        for band in range(_BANDS):
            # rows with the same values in this band share a bucket
            block = np.ascontiguousarray(sigs[:, band * rows:(band + 1) * rows])
            _, bucket = np.unique(block.view(np.dtype((np.void, block.dtype.itemsize * rows))).ravel(),
                                  return_inverse=True)
            shared = np.flatnonzero(np.bincount(bucket)[bucket] > 1)  # rows not alone in their bucket
            if not len(shared):
                continue
            order = shared[np.argsort(bucket[shared], kind="stable")]
            bounds = np.flatnonzero(np.diff(bucket[order])) + 1
            for members in np.split(order, bounds):
                ids = ok[members].tolist()
                for a in range(len(ids)):
                    for b in range(a + 1, len(ids)):
                        candidates.add((ids[a], ids[b]))
    shingles: dict[int, set[int]] = {}
    pairs = []
    for i, j in sorted(candidates):
        if float(np.mean(signatures[i] == signatures[j])) < threshold - 0.25:
            continue  # the estimate is far below: not a near-duplicate (the estimate's error is ~0.06)
        si = shingles.setdefault(i, _shingles(texts[i]))
        sj = shingles.setdefault(j, _shingles(texts[j]))
        jac = len(si & sj) / len(si | sj)
        if jac >= threshold:
            pairs.append((i, j, round(jac, 3)))
    return pairs


# ---------------------------------------------------------------------------------------------
# The stage
# ---------------------------------------------------------------------------------------------

@dataclass
class IngestResult:
    stories: pd.DataFrame
    report: pd.DataFrame
    n_files: int

    def summary(self) -> str:
        errors = int((self.report["severity"] == "error").sum()) if len(self.report) else 0
        warnings = int((self.report["severity"] == "warning").sum()) if len(self.report) else 0
        return (f"ingest: {len(self.stories)} stories from {self.n_files} files; "
                f"{errors} skipped with an error, {warnings} warnings")


def ingest(settings: Settings, folder: Path | None = None, echo=print) -> IngestResult:
    """Read every story under `folder` (default settings.corpus_dir) into the stories table.

    Problems are echoed one line each (echo=None silences them) and returned as the report.
    """
    folder = Path(folder or settings.corpus_dir)
    gaz = load_gazetteer(settings.regions_file)
    problems: list[Problem] = []

    def report(path, story_id, severity, message):
        p = Problem(str(path), story_id or "", severity, message, "skipped" if severity == "error" else "kept")
        problems.append(p)
        if echo:
            echo(p.line())

    if not folder.exists():
        raise FileNotFoundError(f"story folder not found: {folder}")
    files = iter_input_files(folder)
    cache = _IngestCache(settings, folder)
    records: list[dict] = []
    for path in progress(files, "ingest", enabled=settings.progress):
        key = cache.key(path)
        found = cache.get(key)
        if found is None:
            found = _read_and_validate(path, gaz, settings)
            cache.put(key, found)
        file_records, file_problems = found
        for p in file_problems:
            report(p.path, p.story_id, p.severity, p.problem)
        records += [dict(r) for r in file_records]
    cache.save()

    records = _drop_duplicates(records, settings, report)
    stories = pd.DataFrame.from_records(records, columns=STORY_COLUMNS)
    stories["date"] = pd.to_datetime(stories["date"])
    stories = stories.sort_values("story_id", kind="stable").reset_index(drop=True)
    report_df = pd.DataFrame([p.__dict__ for p in problems], columns=["path", "story_id", "severity", "problem", "action"])
    return IngestResult(stories, report_df, len(files))


def _read_and_validate(path: Path, gaz: Gazetteer, settings: Settings) -> tuple[list[dict], list[Problem]]:
    """One file -> its validated story records (with their MinHash signatures) and its problems."""
    problems: list[Problem] = []

    def report(path, story_id, severity, message):
        problems.append(Problem(str(path), story_id or "", severity, message,
                                "skipped" if severity == "error" else "kept"))

    try:
        raws = read_file(path, settings)
    except SkipFile as exc:
        report(path, "", "error", str(exc))
        return [], problems
    except OSError as exc:
        report(path, "", "error", f"cannot read file ({exc.strerror or exc})")
        return [], problems
    records = []
    for raw in raws:
        rec = _validate(raw, gaz, settings, report)
        if rec is not None:
            rec["_sig"] = minhash_signature(rec["text"])
            records.append(rec)
    return records, problems


class _IngestCache:
    """Validated records per input file, keyed by path, size and modification time, so a re-run
    reads and validates only new or changed files. One file per story folder under
    settings.cache_dir/ingest/, named by the folder and a fingerprint of everything validation
    depends on (thresholds, gazetteer, this module)."""

    keep = 16  # cache files (folders) kept

    def __init__(self, settings: Settings, folder: Path):
        import pickle

        h = hashlib.sha256(repr((settings.max_file_bytes, settings.min_words, settings.min_dutch_share,
                                 settings.mixed_language_share)).encode())
        h.update(Path(settings.regions_file).read_bytes())
        h.update(Path(__file__).read_bytes())
        where = hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:12]
        self.path = Path(settings.cache_dir) / "ingest" / f"{where}-{h.hexdigest()[:16]}.pkl"
        self.entries: dict = {}
        self.used: dict = {}
        self.changed = False
        if self.path.exists():
            try:
                self.entries = pickle.loads(self.path.read_bytes())
            except Exception:  # a damaged cache is rebuilt, never trusted
                self.entries = {}

    @staticmethod
    def key(path: Path):
        """(path, size, mtime), taken before the file is read: a file changed while it was read
        gets another key next time. None when the file cannot be stat'ed (read it, uncached)."""
        try:
            st = path.stat()
        except OSError:
            return None
        return str(path), st.st_size, st.st_mtime_ns

    def get(self, key):
        hit = self.entries.get(key[0]) if key is not None else None
        if hit is not None and hit[0] == key:
            self.used[key[0]] = hit
            return hit[1]
        return None

    def put(self, key, found) -> None:
        if key is not None:
            self.used[key[0]] = (key, found)
            self.changed = True

    def save(self) -> None:
        import pickle

        from .outputs import atomic_path

        if not self.changed and len(self.used) == len(self.entries):
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            Path(tmp).write_bytes(pickle.dumps(self.used, protocol=pickle.HIGHEST_PROTOCOL))
        # one file per folder analysed: keep the most recently used ones
        files = sorted(self.path.parent.glob("*.pkl"), key=lambda f: f.stat().st_mtime, reverse=True)
        for old in files[self.keep:]:
            old.unlink(missing_ok=True)


def _validate(raw: RawStory, gaz: Gazetteer, settings: Settings, report) -> dict | None:
    meta = raw.meta
    story_id = clean_id(meta.get("id") or raw.fallback_id) or clean_id(raw.fallback_id) or "story"
    if meta.get("id") and clean_id(meta["id"]) != str(meta["id"]).strip():
        report(raw.path, story_id, "warning", f"id {meta['id']!r} is not a clean slug; using {story_id!r}")
    for message in raw.problems:
        if message.startswith("SKIP:"):
            report(raw.path, story_id, "error", message[5:])
            return None
        report(raw.path, story_id, "warning", message)
    text = raw.text
    n_words = count_words(text)
    if n_words == 0:
        report(raw.path, story_id, "error", "no story text (only metadata or markup)")
        return None
    language, dutch_share = detect_language(text)
    if language != "nl" and dutch_share < settings.min_dutch_share:
        report(raw.path, story_id, "error",
               f"not Dutch (looks like '{language}', Dutch share {dutch_share:.0%}); Rode Draad analyses Dutch stories")
        return None
    if language == "nl" and dutch_share < settings.mixed_language_share:
        report(raw.path, story_id, "warning", f"partly in another language (Dutch share {dutch_share:.0%})")
    if n_words < settings.min_words:
        report(raw.path, story_id, "warning", f"very short story ({n_words} words)")

    title = str(meta.get("title") or "").strip()
    if not title:
        title = text.split("\n\n", 1)[0].lstrip("#- ")[:80]
        report(raw.path, story_id, "warning", "no title; using the first words of the text")

    story_date = parse_date(meta.get("date"))
    if meta.get("date") and story_date is None:
        report(raw.path, story_id, "warning", f"date {meta.get('date')!r} cannot be read; story has no date "
               "and is left out of period selections")
    elif story_date is None:
        report(raw.path, story_id, "warning", "no date; story is left out of period selections")

    region, inferred = None, False
    given = meta.get("region")
    if given:
        region = gaz.normalise_region(str(given))
        if region is None:
            report(raw.path, story_id, "warning", f"unknown region {given!r} (not one of the 35 arbeidsmarktregio's)")
    if region is None:
        region, how = gaz.infer_region(title + "\n" + text)
        inferred = region is not None
        if inferred:
            report(raw.path, story_id, "warning", f"region {region!r} {how}")
        elif not given:
            report(raw.path, story_id, "warning", f"no region ({how})")

    return {
        "story_id": story_id,
        "title": title,
        "date": pd.Timestamp(story_date) if story_date else pd.NaT,
        "region": region or "",
        "region_inferred": inferred,
        "organisations": "; ".join(_as_list(meta.get("organisations"))),
        "source": str(meta.get("source") or ""),
        "text": text,
        "n_words": n_words,
        "content_hash": content_hash(text),
        "language": language,
        "dutch_share": dutch_share,
        "format": raw.fmt,
        "path": raw.path,
    }


def _drop_duplicates(records: list[dict], settings: Settings, report) -> list[dict]:
    """Exact duplicates (same text) and near-duplicates are skipped; duplicate ids are renamed."""
    kept: list[dict] = []
    by_hash: dict[str, dict] = {}
    for rec in records:
        first = by_hash.get(rec["content_hash"])
        if first is not None:
            report(rec["path"], rec["story_id"], "error", f"exact duplicate of {first['path']} [{first['story_id']}]")
            continue
        by_hash[rec["content_hash"]] = rec
        kept.append(rec)
    drop = set()
    sigs = [r.get("_sig") for r in kept]
    for i, j, sim in near_duplicate_pairs([r["text"] for r in kept], settings.near_duplicate_threshold,
                                          signatures=None if any(g is None for g in sigs) else sigs):
        if i in drop or j in drop:
            continue
        drop.add(j)
        report(kept[j]["path"], kept[j]["story_id"], "error",
               f"near-duplicate of {kept[i]['path']} [{kept[i]['story_id']}] ({sim:.0%} of word 5-grams shared)")
    kept = [r for k, r in enumerate(kept) if k not in drop]
    seen: dict[str, str] = {}
    for rec in kept:
        if rec["story_id"] in seen:
            new_id = f"{rec['story_id']}-{rec['content_hash'][:6]}"
            report(rec["path"], rec["story_id"], "warning",
                   f"id also used by {seen[rec['story_id']]}; this story gets id {new_id!r}")
            rec["story_id"] = new_id
        seen[rec["story_id"]] = rec["path"]
    return kept


def select_period(stories: pd.DataFrame, since: date | None, until: date | None) -> pd.DataFrame:
    """Stories dated within [since, until]; with no bounds, all stories (undated included)."""
    if since is None and until is None:
        return stories
    mask = stories["date"].notna()
    if since is not None:
        mask &= stories["date"] >= pd.Timestamp(since)
    if until is not None:
        mask &= stories["date"] <= pd.Timestamp(until)
    return stories[mask].reset_index(drop=True)
