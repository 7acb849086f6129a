# Rode Draad. Every target bootstraps the virtual environment in .venv when it is missing.
#   make analyze   the main job: the whole pipeline over corpus/stories, outputs in build/
#   make test      the test suite
# Overrides: CORPUS=dir OUT=dir SINCE=YYYY[-MM[-DD]] UNTIL=YYYY[-MM[-DD]] UD_DIR=dir PYTHON=python3.11
#            (make model: UD_DIR, MODEL_WORK for its intermediate files)

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
CORPUS ?= corpus/stories
OUT    ?= build
SINCE  ?=
UNTIL  ?=
UD_DIR ?= ../shared/ud-dutch
MODEL_WORK ?= /tmp/rd-model

PERIOD_ARGS := $(if $(SINCE),--since $(SINCE)) $(if $(UNTIL),--until $(UNTIL))

.PHONY: analyze test evaluate bench notebooks model model-eval corpus-check corpus-stats clean help

help:
	@sed -n '2,5p' Makefile

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

analyze: $(VENV)/.installed
	$(PY) -m pipeline analyze --corpus $(CORPUS) --out $(OUT) $(PERIOD_ARGS)

test: $(VENV)/.installed
	$(PY) -m pytest -q

evaluate: $(VENV)/.installed
	$(PY) -m pipeline evaluate --out $(OUT)

bench: $(VENV)/.installed
	$(PY) benchmarks/bench.py

notebooks: $(VENV)/.installed
	$(PY) -m pipeline notebooks

model: $(VENV)/.installed
	$(PY) models/train/train.py --ud-dir $(UD_DIR) --out models/nl_rode_draad --work-dir $(MODEL_WORK) --max-minutes 60

model-eval: $(VENV)/.installed
	$(PY) models/train/evaluate_loaded.py --ud-dir $(UD_DIR) --work-dir $(MODEL_WORK)

corpus-check: $(VENV)/.installed
	$(PY) -m pipeline corpus check

corpus-stats: $(VENV)/.installed
	$(PY) -m pipeline corpus stats --write docs/corpus.md

clean:
	rm -rf $(OUT) .pytest_cache
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +
