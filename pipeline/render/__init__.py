"""Writers: one per output format. Each takes the draft dictionary (see pipeline/draft.py) and
returns text or bytes; they hold no analysis logic of their own."""
from __future__ import annotations

POLARITY_TITLES = {"succes": "succesfactoren", "knelpunt": "knelpunten"}
TREND_WORDS = {"nieuw": "nieuw", "groeiend": "groeiend", "stabiel": "stabiel", "afnemend": "afnemend"}


def top_items(theme: dict, polarity: str, n: int) -> list[dict]:
    """The first n items of a theme for one polarity, in draft order (rejected items are gone)."""
    return [i for i in theme["items"] if i["polarity"] == polarity][:n]


def support_text(item: dict) -> str:
    regions = ", ".join(item["regions"]) if item["regions"] else "regio onbekend"
    stories_word = "verhaal" if item["n_stories"] == 1 else "verhalen"
    regions_word = "regio" if item["n_regions"] == 1 else "regio's"
    s = f"{item['n_stories']} {stories_word}, {item['n_regions']} {regions_word} ({regions})"
    if item.get("trend"):
        before = item.get("previous_n_stories")
        s += f"; {item['trend']}" + (f" (vorige periode {before})" if before is not None else "")
    return s


def period_text(draft: dict) -> str:
    p = draft["period"]
    if p["since"] or p["until"]:
        return f"periode {p['since'] or 'begin'} t/m {p['until'] or 'heden'}"
    if p.get("first_story_date"):
        return f"alle verhalen ({p['first_story_date']} t/m {p['last_story_date']})"
    return "alle verhalen"
