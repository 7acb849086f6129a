"""Shared fixtures: settings that point at temporary folders, and small story files."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.settings import ROOT, Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings().replace(corpus_dir=tmp_path / "stories", out_dir=tmp_path / "build", progress=False)


@pytest.fixture
def story_dir(settings: Settings) -> Path:
    settings.corpus_dir.mkdir(parents=True, exist_ok=True)
    return settings.corpus_dir


DUTCH_BODY = (
    "In de regio werken de gemeente, UWV en het werkgeversservicepunt samen om mensen met een afstand "
    "tot de arbeidsmarkt aan het werk te helpen. De consulenten kennen de werkgevers persoonlijk en "
    "komen elke week langs op de werkvloer. Volgens projectleider Anouk de Vries is dat de kern van "
    "het succes: ‘Als een werkgever ons belt, zijn we er dezelfde dag nog.’ Toch is het niet altijd "
    "eenvoudig, want de financiering van de begeleiding is versnipperd over verschillende potjes."
)


def md_story(story_id: str = "voorbeeld", body: str = DUTCH_BODY, **meta) -> str:
    front = {"id": story_id, "title": "Een voorbeeldverhaal", "date": "2023-05-01", "region": "Twente", **meta}
    lines = ["---"] + [f"{k}: {v}" for k, v in front.items() if v is not None] + ["---", "", body, ""]
    return "\n".join(lines)


def corpus_root() -> Path:
    return ROOT / "corpus"
