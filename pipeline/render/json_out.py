"""The draft as JSON (build/draft.json), the shape other tools rely on."""
from __future__ import annotations

import json


def render_json(draft: dict, indent_limit: int = 5_000) -> str:
    """Indented for reading when small; compact (and about ten times faster to write, with the C
    encoder) when the draft lists more than `indent_limit` members."""
    n_members = sum(len(item.get("members", ())) for theme in draft.get("themes", ()) for item in theme.get("items", ()))
    indent = 2 if n_members <= indent_limit else None
    return json.dumps(draft, ensure_ascii=False, indent=indent, default=str) + "\n"
