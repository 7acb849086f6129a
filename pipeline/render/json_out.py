"""The draft as JSON (build/draft.json), the shape other tools rely on."""
from __future__ import annotations

import orjson


def render_json_bytes(draft: dict) -> bytes:
    """Indented UTF-8 JSON (orjson: about ten times faster than the standard library on large
    drafts). Values JSON has no type for (dates, numpy numbers) are written as text or numbers."""
    return orjson.dumps(draft, default=str,
                        option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS) + b"\n"


def render_json(draft: dict) -> str:
    return render_json_bytes(draft).decode("utf-8")
