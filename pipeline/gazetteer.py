"""The arbeidsmarktregio gazetteer: region names, aliases and municipalities.

One data file (`pipeline/data/regions.yaml`) serves ingestion (normalising and inferring a
story's region) and the spaCy entity ruler (REGIO and GEMEENTE entities, see `nlp.py`).
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .settings import read_yaml


def _key(name: str) -> str:
    """Case-, accent-, hyphen- and space-insensitive lookup key: 'Noord-Holland  noord' -> 'noordhollandnoord'."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    text = text.replace("regio ", "").replace("arbeidsmarktregio ", "")
    return re.sub(r"[^a-z0-9]", "", text)


@dataclass(frozen=True)
class Gazetteer:
    regions: tuple[str, ...]
    aliases: dict[str, str]  # lookup key -> region
    municipalities: dict[str, tuple[str, ...]]  # municipality (as written) -> regions
    ambiguous: frozenset[str]
    source_year: int
    _pattern: re.Pattern = field(repr=False, compare=False, default=None)

    @classmethod
    def load(cls, path: Path) -> "Gazetteer":
        data = read_yaml(path)
        regions, aliases, munis = [], {}, {}
        for entry in data["regions"]:
            name = entry["name"]
            regions.append(name)
            for alias in [name, *entry.get("aliases", [])]:
                aliases[_key(alias)] = name
            for m in entry.get("municipalities", []):
                munis.setdefault(m, [])
                if name not in munis[m]:
                    munis[m].append(name)
        names = sorted({*munis, *[a for e in data["regions"] for a in [e["name"], *e.get("aliases", [])]]},
                       key=len, reverse=True)
        pattern = re.compile(r"(?<![\w-])(" + "|".join(re.escape(n) for n in names) + r")(?![\w-])")
        return cls(
            regions=tuple(regions),
            aliases=aliases,
            municipalities={m: tuple(r) for m, r in munis.items()},
            ambiguous=frozenset(data.get("ambiguous_municipalities", [])),
            source_year=int(data.get("source_year", 0)),
            _pattern=pattern,
        )

    def normalise_region(self, name: str | None) -> str | None:
        """The canonical region for a region name, alias or (unambiguous) municipality, else None."""
        if not name or not str(name).strip():
            return None
        key = _key(str(name))
        if key in self.aliases:
            return self.aliases[key]
        for muni, regs in self.municipalities.items():
            if _key(muni) == key and len(regs) == 1:
                return regs[0]
        return None

    def mentions(self, text: str) -> list[tuple[int, int, str, str]]:
        """Every place name in `text`: (start, end, surface, kind) with kind 'REGIO' or 'GEMEENTE'.

        Ambiguous municipality names (also ordinary words) count only after "gemeente" or "in".
        Region names that are also municipality names (Groningen, Utrecht) count as REGIO.
        """
        found = []
        for m in self._pattern.finditer(text):
            surface = m.group(1)
            is_region = _key(surface) in self.aliases
            if not is_region and surface in self.ambiguous:
                before = text[max(0, m.start() - 10):m.start()].lower()
                if not re.search(r"(gemeente|\bin)\s+$", before):
                    continue
            found.append((m.start(), m.end(), surface, "REGIO" if is_region else "GEMEENTE"))
        return found

    def regions_of(self, surface: str) -> tuple[str, ...]:
        """The region(s) a place name points to."""
        key = _key(surface)
        if key in self.aliases:
            return (self.aliases[key],)
        return self.municipalities.get(surface, ())

    def infer_region(self, text: str) -> tuple[str | None, str]:
        """Infer a story's region from the place names in its text.

        Returns (region or None, a short explanation). Each mention votes for its region; a
        municipality that lies in several regions does not vote. Ties are resolved by the
        earliest mention.
        """
        votes: Counter = Counter()
        first: dict[str, int] = {}
        names: dict[str, list[str]] = {}
        for start, _end, surface, _kind in self.mentions(text):
            regs = self.regions_of(surface)
            if len(regs) != 1:
                continue
            votes[regs[0]] += 1
            first.setdefault(regs[0], start)
            names.setdefault(regs[0], []).append(surface)
        if not votes:
            return None, "no region or municipality named in the text"
        best = sorted(votes, key=lambda r: (-votes[r], first[r]))[0]
        shown = ", ".join(sorted(set(names[best]))[:3])
        return best, f"inferred from {votes[best]} mention(s): {shown}"


@lru_cache(maxsize=4)
def load_gazetteer(path: Path) -> Gazetteer:
    """Cached loader (the file is read once per process and path)."""
    return Gazetteer.load(path)
