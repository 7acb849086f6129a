"""The draft as a Word document (build/rode-draad.docx): headings, numbered lists, quotes."""
from __future__ import annotations

import io

from . import POLARITY_TITLES, period_text, support_text, top_items


def _clean(text: str) -> str:
    """Word (XML) cannot hold control characters; drop them."""
    return "".join(ch for ch in str(text) if ch in "\t\n" or ord(ch) >= 32)


def _styled(document, style_id: str, text: str | None = None):
    """A paragraph with a paragraph style, set by its id (python-docx's lookup by name scans all
    styles for every paragraph, which is slow on long documents)."""
    p = document.add_paragraph(text)
    p._p.get_or_add_pPr().style = style_id
    return p


def render_docx(draft: dict, max_unthemed: int = 100) -> bytes:
    import docx
    from docx.shared import Pt

    document = docx.Document()
    style_id = {name: document.styles[name].style_id for name in ("List Number", "Quote", "List Bullet")}
    document.core_properties.title = f"Rode draad ({period_text(draft)})"
    document.core_properties.author = "Rode Draad"
    document.add_heading(_clean(f"Rode draad: concept ({period_text(draft)})"), level=0)
    document.add_paragraph(_clean(f"Automatisch opgesteld uit {draft['n_stories']} praktijkverhalen. Een eerste versie "
                                  "voor de redactie: controleer elke factor aan de hand van de citaten en de verhalen."))
    n = draft["top_n"]
    for theme in draft["themes"]:
        document.add_heading(_clean(theme["name"]), level=1)
        regions = ", ".join(theme["regions"]) if theme["regions"] else "geen"
        document.add_paragraph(_clean(f"{theme['n_stories']} verhalen uit {theme['n_regions']} arbeidsmarktregio's ({regions})."))
        for pol in ("succes", "knelpunt"):
            items = top_items(theme, pol, n)
            document.add_heading(_clean(f"De {len(items)} belangrijkste {POLARITY_TITLES[pol]}"), level=2)
            if not items:
                document.add_paragraph("Geen gevonden in deze periode.")
            for item in items:
                p = _styled(document, style_id["List Number"])
                p.add_run(_clean(item["label"])).bold = True
                p.add_run(_clean(f" ({support_text(item)})"))
                for q in item["quotes"]:
                    qp = _styled(document, style_id["Quote"])
                    qp.add_run(_clean(f"“{q['text']}” "))
                    r = qp.add_run(_clean(q["title"]))
                    r.italic = True
                    r.font.size = Pt(9)
        if theme.get("fading"):
            document.add_heading("Minder genoemd dan in de vorige periode", level=2)
            for f in theme["fading"]:
                _styled(document, style_id["List Bullet"],
                        _clean(f"{f['label']} (vorige periode {f['previous_n_stories']} verhalen, nu niet)"))
    if draft["unthemed_stories"]:
        document.add_heading("Verhalen zonder thema", level=1)
        unthemed = draft["unthemed_stories"]
        for s in unthemed[:max_unthemed]:
            _styled(document, style_id["List Bullet"], _clean(f"{s['title']} ({s['story_id']})"))
        if len(unthemed) > max_unthemed:
            document.add_paragraph(f"En nog {len(unthemed) - max_unthemed} verhalen; alle staan in themes.csv.")
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()
