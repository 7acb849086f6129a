"""The draft as Markdown (build/rode-draad.md)."""
from __future__ import annotations

from . import POLARITY_TITLES, period_text, support_text, top_items


def _md_escape(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("*", "\\*").replace("_", "\\_").replace("<", "&lt;").replace("`", "\\`")


def render_markdown(draft: dict) -> str:
    n = draft["top_n"]
    out = [f"# Rode draad: concept ({period_text(draft)})", "",
           f"Automatisch opgesteld uit {draft['n_stories']} praktijkverhalen. Dit is een eerste versie voor de "
           "redactie: controleer elke factor aan de hand van de citaten en de verhalen.", ""]
    for theme in draft["themes"]:
        out += [f"## {theme['name']}", ""]
        regions = ", ".join(theme["regions"]) if theme["regions"] else "geen"
        out += [f"{theme['n_stories']} verhalen uit {theme['n_regions']} arbeidsmarktregio's ({regions}).", ""]
        for pol in ("succes", "knelpunt"):
            items = top_items(theme, pol, n)
            out += [f"### De {len(items)} belangrijkste {POLARITY_TITLES[pol]}", ""]
            if not items:
                out += ["_Geen gevonden in deze periode._", ""]
            for k, item in enumerate(items, 1):
                out.append(f"{k}. **{_md_escape(item['label'])}**: {_md_escape(support_text(item))}")
                for q in item["quotes"]:
                    out.append(f"   > “{_md_escape(q['text'])}” (_{_md_escape(q['title'])}_)")
                out.append("")
        fading = theme.get("fading") or []
        if fading:
            out += ["### Minder genoemd dan in de vorige periode", ""]
            out += [f"- {_md_escape(f['label'])} ({POLARITY_TITLES[f['polarity']][:-2] if f['polarity'] == 'succes' else 'knelpunt'}; "
                    f"vorige periode {f['previous_n_stories']} verhalen, nu niet)" for f in fading]
            out.append("")
    if draft["unthemed_stories"]:
        out += ["## Verhalen zonder thema", "", "Deze verhalen passen bij geen van de thema's; de redactie beslist:", ""]
        out += [f"- {_md_escape(s['title'])} (`{s['story_id']}`)" for s in draft["unthemed_stories"]]
        out.append("")
    return "\n".join(out)
