"""The draft as JSON (build/draft.json), the shape other tools rely on."""
from __future__ import annotations

import json


def render_json(draft: dict) -> str:
    return json.dumps(draft, ensure_ascii=False, indent=2, default=str) + "\n"
