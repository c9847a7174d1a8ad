# loopwise: the two set-up-and-go commands are `make demo` and `make test`.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.loopwise-installed
BENCH_STAMP := $(VENV)/.loopwise-bench-installed

.PHONY: demo test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Install torch (pinned: an unpinned torch pulls a multi-GB CUDA build) and numpy first,
# then the package with its dev extras. Re-runs only when pyproject.toml or TORCH changes.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet "$(TORCH)" numpy
	$(PY) -m pip install --quiet "$(TORCH)" -e ".[dev]"  # the pin again: no dependency may upgrade it
	echo "$(TORCH)" > $(STAMP)

demo: $(STAMP)
	$(PY) -m loopwise.demo

test: $(STAMP)
	MPLBACKEND=Agg $(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check src tests bench
	$(PY) -m mypy src/loopwise

# The bench extra (Lightning, Keras, TensorBoard, MLflow: the peers the benchmarks measure),
# installed once, with torch pinned in the same command so that pip never swaps it.
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet "$(TORCH)" -e ".[bench]"
	echo "$(TORCH)" > $(BENCH_STAMP)

# Runs every benchmark and rewrites docs/benchmarks.md and docs/benchmarks.png (~20-25 min);
# `make bench BENCH_ARGS=--quick` for a short pass.
bench: $(BENCH_STAMP)
	KERAS_BACKEND=torch MPLBACKEND=Agg $(PY) bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
