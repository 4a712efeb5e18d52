# heed: two commands.  `make serve` sets up and serves the shipped corpus;  `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve test lint bench eval clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: this exact version is the CPU build; anything else pulls CUDA wheels.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,milvus]'  # milvus: the Milvus Lite tests run too
	touch $(STAMP)

serve: $(STAMP)  ## index data/ on first start, then serve on http://127.0.0.1:8000
	$(BIN)/heed serve

CHROMIUM_APT := apt-get update && apt-get install -y chromium chromium-driver fonts-wqy-zenhei

test: $(STAMP)  ## the whole suite (pytest's "no tests collected", exit 5, fails too)
	@command -v chromium >/dev/null || test -x /usr/bin/chromium || { \
	  echo "make test drives Debian's Chromium (page and API docs tests); install it first:"; \
	  echo "  $(CHROMIUM_APT)"; exit 1; }
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff format --check . && $(BIN)/ruff check . && $(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench.index_and_query

eval: $(STAMP)
	$(BIN)/heed eval ../shared/eval/cranfield --json bench/results/eval-cranfield.json

clean:
	rm -rf $(VENV) var
