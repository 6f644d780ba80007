# The README's two commands: `make demo` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: demo test lint types pytest install clean bench

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/tianwang demo

lint: $(STAMP)
	$(BIN)/ruff check platform edge_agent simulator tests bench
	$(BIN)/ruff format --check platform edge_agent simulator tests bench

types: $(STAMP)
	$(BIN)/mypy platform edge_agent simulator

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

test: lint types pytest

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
