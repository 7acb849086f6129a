"""Stage 5: the draft rode draad as data, ranked, with support, evidence and trends.

`build_draft` turns clusters, members, stories and themes into one plain dictionary (the shape
of draft.json, see docs/architecture.md); every renderer (Markdown, HTML, Word, JSON) writes
that dictionary and adds no logic of its own.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from .frames import named, records
from .settings import load_themes

SCHEMA_VERSION = 2


def rank_clusters(clusters: pd.DataFrame) -> pd.DataFrame:
    """Clusters ordered within theme and polarity by distinct stories, then distinct regions,
    then label; with `rank` (1 = most supported)."""
    if clusters.empty:
        return clusters.assign(rank=pd.Series(dtype=int))
    ordered = clusters.sort_values(["theme", "polarity", "n_stories", "n_regions", "label", "cluster_id"],
                                   ascending=[True, True, False, False, True, True], kind="stable")
    ordered = ordered.reset_index(drop=True)
    ordered["rank"] = ordered.groupby(["theme", "polarity"]).cumcount() + 1
    return ordered


@dataclass(frozen=True)
class Period:
    since: date | None
    until: date | None

    @property
    def label(self) -> str:
        if self.since is None and self.until is None:
            return "alles"
        if self.since and self.until:
            if self.since.month == 1 and self.since.day == 1 and self.until == date(self.since.year, 12, 31):
                return str(self.since.year)
            if self.since.day == 1 and self.until == date(self.since.year, 6, 30) and self.since.month == 1:
                return f"{self.since.year}H1"
            if self.since == date(self.since.year, 7, 1) and self.until == date(self.since.year, 12, 31):
                return f"{self.since.year}H2"
        return f"{self.since or 'begin'}_{self.until or 'eind'}"

    def previous(self) -> "Period | None":
        """The period of equal length just before this one (None when this one is open)."""
        if self.since is None or self.until is None:
            return None
        length = (self.until - self.since).days + 1
        if self.since.day == 1 and self.until.day == _last_day(self.until) and self.since.month in (1, 7):
            months = (self.until.year - self.since.year) * 12 + self.until.month - self.since.month + 1
            y, m = self.since.year, self.since.month - months
            while m < 1:
                m += 12
                y -= 1
            start = date(y, m, 1)
            end = date.fromordinal(self.since.toordinal() - 1)
            return Period(start, end)
        end = date.fromordinal(self.since.toordinal() - 1)
        return Period(date.fromordinal(end.toordinal() - length + 1), end)


def _last_day(d: date) -> int:
    nxt = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return date.fromordinal(nxt.toordinal() - 1).day


def parse_period(text: str) -> Period:
    """'2024' -> the year; '2024H1'/'2024H2' -> half years; '2024Q3' -> a quarter; '2024-03' -> a month."""
    text = text.strip()
    m = re.fullmatch(r"(\d{4})(?:([HhQq])([1-4]))?", text)
    if m:
        y = int(m.group(1))
        if not m.group(2):
            return Period(date(y, 1, 1), date(y, 12, 31))
        k = int(m.group(3))
        if m.group(2).lower() == "h" and k in (1, 2):
            return Period(date(y, 1, 1), date(y, 6, 30)) if k == 1 else Period(date(y, 7, 1), date(y, 12, 31))
        if m.group(2).lower() == "q":
            start = date(y, 3 * k - 2, 1)
            end_month = 3 * k
            return Period(start, date(y, end_month, _last_day(date(y, end_month, 1))))
    m = re.fullmatch(r"(\d{4})-(\d{2})", text)
    if m:
        y, mo = int(m.group(1)), int(m.group(2))
        return Period(date(y, mo, 1), date(y, mo, _last_day(date(y, mo, 1))))
    raise ValueError(f"cannot read period {text!r}: use e.g. 2024, 2024H1, 2024Q3 or 2024-03")


def _quotes(members, titles: dict, n: int = 3, max_chars: int = 240) -> list[dict]:
    """Up to n short quotes from distinct stories, most central first (members: draft records)."""
    out, seen = [], set()
    for m in members:
        if m["story_id"] in seen:
            continue
        text = str(m["sentence"]).strip().strip("\"“”‘’'„ ").strip()
        if len(text) > max_chars:
            text = text[: max_chars - 1].rsplit(" ", 1)[0] + "…"
        out.append({"story_id": m["story_id"], "title": titles.get(m["story_id"], m["story_id"]), "text": text})
        seen.add(m["story_id"])
        if len(out) == n:
            break
    return out


def trend_label(now: int, before: int | None) -> str:
    """nieuw / groeiend / stabiel / afnemend, from distinct stories now and in the previous period."""
    if before is None:
        return ""
    if before == 0:
        return "nieuw"
    if now >= before * 1.5 and now - before >= 2:
        return "groeiend"
    if now <= before / 1.5 and before - now >= 2:
        return "afnemend"
    return "stabiel"


def build_draft(clusters: pd.DataFrame, members: pd.DataFrame, stories: pd.DataFrame, themes: pd.DataFrame,
                period: Period | None = None, previous: dict | None = None, top_n: int = 5,
                fading: list[dict] | None = None) -> dict:
    """The draft as a dictionary (draft.json's shape).

    previous: optional {(theme, polarity, cluster_id): n_stories} support in the previous period,
    matched by the caller (see `match_previous`), for the trend of each item.
    """
    period = period or Period(None, None)
    theme_defs = load_themes()
    titles = dict(zip(stories["story_id"], stories["title"]))
    region_of = dict(zip(stories["story_id"], stories["region"].fillna("")))
    date_of = dict(zip(stories["story_id"].tolist(), _iso_column(stories["date"])))
    ranked = rank_clusters(clusters)
    ranked = ranked.assign(first_date=_iso_column(ranked["first_date"]), last_date=_iso_column(ranked["last_date"]))
    # every member as its draft.json record, built column-wise (a loop over 100,000s of rows of
    # pandas' Arrow-backed strings is slow), then grouped per (cluster, theme)
    m = members[["cluster_id", "theme", "story_id", "sentence_index", "sentence", "start", "end", "phrase"]]
    m = m.assign(sentence_index=m["sentence_index"].astype(int),
                 start=m["start"].astype(int), end=m["end"].astype(int))
    member_lists: dict[tuple, list] = {}
    keys = list(zip(m["cluster_id"].tolist(), m["theme"].tolist()))
    fields = ["story_id", "sentence_index", "sentence", "start", "end", "phrase"]
    for key, record in zip(keys, records(m, fields)):
        member_lists.setdefault(key, []).append(record)
    out_themes = []
    theme_lists = [(s, [t for t in str(ts).split(";") if t]) for s, ts in zip(themes["story_id"], themes["themes"].fillna(""))]
    for t in theme_defs:
        sids = [s for s, ts in theme_lists if t.key in ts]
        regions = sorted({region_of.get(s, "") for s in sids} - {""})
        items = []
        for row in named(ranked[ranked["theme"] == t.key]):
            ms = member_lists.get((row.cluster_id, t.key), [])
            before = None if previous is None else previous.get((t.key, row.polarity, row.cluster_id), 0)
            items.append({
                "cluster_id": row.cluster_id, "polarity": row.polarity, "rank": int(row.rank),
                "label": row.label, "generated_label": getattr(row, "generated_label", row.label),
                "keywords": [k for k in str(row.keywords).split(", ") if k],
                "n_stories": int(row.n_stories), "n_regions": int(row.n_regions),
                "regions": [r for r in str(row.regions).split("; ") if r],
                "first_date": row.first_date, "last_date": row.last_date,
                "previous_n_stories": before, "trend": trend_label(int(row.n_stories), before),
                "verdict": getattr(row, "verdict", "") or "", "note": getattr(row, "note", "") or "",
                "quotes": _quotes(ms, titles),
                "members": ms,
            })
        out_themes.append({"key": t.key, "name": t.name, "n_stories": len(sids), "regions": regions,
                           "n_regions": len(regions), "items": items,
                           "fading": [f for f in (fading or []) if f["theme"] == t.key]})
    dates = stories["date"].dropna()
    return {
        "schema_version": SCHEMA_VERSION,
        "period": {"label": period.label, "since": _iso(period.since), "until": _iso(period.until),
                   "first_story_date": _iso(dates.min()) if len(dates) else None,
                   "last_story_date": _iso(dates.max()) if len(dates) else None},
        "top_n": top_n,
        "n_stories": int(len(stories)),
        "unthemed_stories": [{"story_id": s, "title": titles.get(s, "")} for s, ts in theme_lists if not ts],
        # title, region and date of every story a member comes from (members refer to it by story_id)
        "stories": {s: {"title": titles.get(s, ""), "region": region_of.get(s, ""), "date": date_of.get(s)}
                    for s in sorted(set(members["story_id"].tolist()))},
        "themes": out_themes,
    }


def _iso_column(values: pd.Series) -> list[str | None]:
    """`_iso` of every value of a column of dates, computed column-wise."""
    dates = pd.to_datetime(values, errors="coerce")
    return [None if d != d else d for d in dates.dt.strftime("%Y-%m-%d").tolist()]


def _iso(value) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return pd.Timestamp(value).date().isoformat()


def match_previous(clusters: pd.DataFrame, members: pd.DataFrame, prev_clusters: pd.DataFrame,
                   prev_members: pd.DataFrame, vectorize) -> tuple[dict, list[dict]]:
    """Match each current cluster to the most similar cluster of the previous period (same theme
    and polarity, label+member phrase similarity >= 0.5) and return its support then, plus the
    previous period's clusters that have no match now (fading factors)."""
    support: dict = {}
    matched_prev = set()
    for (theme, pol), cur in clusters.groupby(["theme", "polarity"]):
        prev = prev_clusters[(prev_clusters["theme"] == theme) & (prev_clusters["polarity"] == pol)]
        if prev.empty:
            for cid in cur["cluster_id"]:
                support[(theme, pol, cid)] = 0
            continue
        cur_text = [_cluster_text(members, c) for c in cur["cluster_id"]]
        prev_text = [_cluster_text(prev_members, c) for c in prev["cluster_id"]]
        sims = vectorize(cur_text, prev_text)
        for i, cid in enumerate(cur["cluster_id"]):
            j = int(np.argmax(sims[i]))
            if sims[i, j] >= 0.5:
                support[(theme, pol, cid)] = int(prev["n_stories"].iloc[j])
                matched_prev.add(prev["cluster_id"].iloc[j])
            else:
                support[(theme, pol, cid)] = 0
    fading = [{"theme": r.theme, "polarity": r.polarity, "label": r.label, "previous_n_stories": int(r.n_stories)}
              for r in prev_clusters.itertuples(index=False)
              if r.cluster_id not in matched_prev and r.n_stories >= 2]
    return support, fading


def _cluster_text(members: pd.DataFrame, cid: str) -> str:
    return " ".join(members.loc[members["cluster_id"] == cid, "phrase"].astype(str).tolist())
