"""The draft as one self-contained HTML page (build/rode-draad.html).

No external requests (no scripts, fonts, images or style sheets from elsewhere); every piece of
story text is HTML-escaped; each theme has an inline SVG bar chart of support per factor.
"""
from __future__ import annotations

from html import escape

from . import POLARITY_TITLES, period_text, support_text, top_items

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.7rem}h2{margin-top:2.5rem;border-bottom:2px solid #b22;padding-bottom:.2rem}
h3{font-size:1.1rem;margin-top:1.4rem}.support{color:#555;font-size:.92rem}
blockquote{margin:.3rem 0 .3rem 1rem;padding-left:.7rem;border-left:3px solid #ddd;color:#444;font-size:.92rem}
.trend{display:inline-block;font-size:.75rem;padding:0 .35rem;border-radius:.3rem;background:#eee;margin-left:.3rem}
.trend-nieuw{background:#d7f0d7}.trend-groeiend{background:#cfe3ff}.trend-afnemend{background:#fde2c8}
.note{background:#fff8e1;padding:.6rem 1rem;border-radius:.4rem}svg text{font-size:11px;font-family:inherit}
"""


def _chart(theme: dict, n: int) -> str:
    rows = [(i, "succes") for i in top_items(theme, "succes", n)] + [(i, "knelpunt") for i in top_items(theme, "knelpunt", n)]
    if not rows:
        return ""
    bar_h, label_w, width = 18, 330, 640
    height = bar_h * len(rows) + 30
    most = max(i["n_stories"] for i, _ in rows) or 1
    scale = (width - label_w - 40) / most
    parts = [f'<svg role="img" aria-label="Steun per factor: {escape(theme["name"])}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">']
    for k, (item, pol) in enumerate(rows):
        y = 10 + k * bar_h
        label = item["label"] if len(item["label"]) <= 48 else item["label"][:47] + "…"
        colour = "#3a7d44" if pol == "succes" else "#b5472f"
        w = max(2, item["n_stories"] * scale)
        parts.append(f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">{escape(label)}</text>'
                     f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{bar_h - 5}" fill="{colour}">'
                     f'<title>{escape(item["label"])}: {item["n_stories"]} verhalen</title></rect>'
                     f'<text x="{label_w + w + 4:.1f}" y="{y + 12}">{item["n_stories"]}</text>')
    parts.append(f'<text x="{label_w}" y="{height - 4}" fill="#555">groen: succesfactor, rood: knelpunt; '
                 'lengte = aantal verhalen</text></svg>')
    return "".join(parts)


def render_html(draft: dict) -> str:
    n = draft["top_n"]
    title = f"Rode draad: concept ({period_text(draft)})"
    body = [f"<h1>{escape(title)}</h1>",
            f'<p class="note">Automatisch opgesteld uit {draft["n_stories"]} praktijkverhalen. Een eerste versie voor '
            "de redactie: controleer elke factor aan de hand van de citaten en de verhalen.</p>"]
    body.append("<nav><ul>" + "".join(f'<li><a href="#{escape(t["key"])}">{escape(t["name"])}</a></li>'
                                      for t in draft["themes"]) + "</ul></nav>")
    for theme in draft["themes"]:
        regions = ", ".join(theme["regions"]) if theme["regions"] else "geen"
        body.append(f'<section id="{escape(theme["key"])}"><h2>{escape(theme["name"])}</h2>')
        body.append(f"<p>{theme['n_stories']} verhalen uit {theme['n_regions']} arbeidsmarktregio's "
                    f"({escape(regions)}).</p>")
        body.append(_chart(theme, n))
        for pol in ("succes", "knelpunt"):
            items = top_items(theme, pol, n)
            body.append(f"<h3>De {len(items)} belangrijkste {POLARITY_TITLES[pol]}</h3>")
            if not items:
                body.append("<p><em>Geen gevonden in deze periode.</em></p>")
                continue
            body.append("<ol>")
            for item in items:
                trend = item.get("trend")
                badge = f' <span class="trend trend-{escape(trend)}">{escape(trend)}</span>' if trend else ""
                quotes = "".join(f"<blockquote>“{escape(q['text'])}” <cite>{escape(q['title'])}</cite></blockquote>"
                                 for q in item["quotes"])
                body.append(f"<li><strong>{escape(item['label'])}</strong>{badge}<br>"
                            f'<span class="support">{escape(support_text(item))}</span>{quotes}</li>')
            body.append("</ol>")
        if theme.get("fading"):
            body.append("<h3>Minder genoemd dan in de vorige periode</h3><ul>")
            body += [f"<li>{escape(f['label'])} (vorige periode {f['previous_n_stories']} verhalen, nu niet)</li>"
                     for f in theme["fading"]]
            body.append("</ul>")
        body.append("</section>")
    if draft["unthemed_stories"]:
        body.append("<h2>Verhalen zonder thema</h2><ul>")
        body += [f"<li>{escape(s['title'])} (<code>{escape(s['story_id'])}</code>)</li>" for s in draft["unthemed_stories"]]
        body.append("</ul>")
    return ("<!DOCTYPE html>\n<html lang=\"nl\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
