PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test notebooks benchmark clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip >/dev/null
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

## Run every experiment's smoke preset; writes runs/demo/REPORT.md.
demo: $(STAMP)
	$(BIN)/python -m experiments demo --workdir runs/demo

## Lint (ruff, complexity included), then the whole test suite on two CPU workers.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 tests

## Pair every jupytext notebook with a generated .ipynb.
notebooks: $(STAMP)
	$(BIN)/jupytext --to ipynb notebooks/*.py

## Time the registered benchmarks; writes benchmarks/results/*.json. Transparent huge pages for
## glibc's large blocks (XLA:CPU maps each call's temporaries afresh; docs/benchmarks.md).
benchmark: export GLIBC_TUNABLES ?= glibc.malloc.hugetlb=1
benchmark: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
