# Humans and CI run the same targets.
#   make demo    set up .venv (core only) and run the offline demo
#   make test    set up .venv (+ test, keras, dataframes, lint groups) and .venv-np1
#                (NumPy 1.26), then lint, type-check and run the suite on NumPy 2
#                and NumPy 1.26. Nothing CUDA is installed: Keras runs on its numpy
#                backend (data and padding parity) and on jax, CPU-only from PyPI
#                (the training tutorial).
#   make test-torch   optional: add the CPU build of PyTorch to .venv and run the
#                torch interop tests (they are skipped when torch is absent)
PY ?= python3
VENV ?= .venv
VENV_NP1 ?= .venv-np1
PIP_FLAGS ?= -q --disable-pip-version-check
# test processes (pytest-xdist): one per core; JOBS=0 runs in one process
JOBS ?= auto

TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: demo test test-torch check pytest pytest-np1 format bench clean

$(VENV)/bin/python:
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) --upgrade "pip>=25.1"

# the install also builds the optional C pre-check in place (setup.py)
EXT_SOURCES = setup.py src/safenpz/_pickle/_verdict.c

$(VENV)/.core: $(VENV)/bin/python pyproject.toml $(EXT_SOURCES)
	$(VENV)/bin/pip install $(PIP_FLAGS) -e .
	touch $@

# no torch and no CUDA: see pyproject's keras group
$(VENV)/.dev: $(VENV)/.core
	$(VENV)/bin/pip install $(PIP_FLAGS) -e . --group test --group keras \
		--group dataframes --group lint
	touch $@

$(VENV_NP1)/.dev: pyproject.toml $(EXT_SOURCES)
	$(PY) -m venv $(VENV_NP1)
	$(VENV_NP1)/bin/pip install $(PIP_FLAGS) --upgrade "pip>=25.1"
	$(VENV_NP1)/bin/pip install $(PIP_FLAGS) -e . --group test "numpy==1.26.*" "pyarrow>=14,<18"
	touch $@

demo: $(VENV)/.core
	$(VENV)/bin/safenpz demo

check: $(VENV)/.dev
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --config-file tests/mypy.ini
	$(VENV)/bin/mypy --config-file tests/typing/mypy.ini tests/typing
	$(VENV)/bin/lint-imports --no-cache

# The suite runs on Keras's numpy backend (it loads and pads, never trains);
# the tutorial test trains a model, so it runs again on jax, appending coverage.
pytest: $(VENV)/.dev
	KERAS_BACKEND=numpy $(VENV)/bin/python -m pytest -n $(JOBS) --cov --cov-report=
	KERAS_BACKEND=jax $(VENV)/bin/python -m pytest --cov --cov-append --cov-report= \
		tests/test_tutorial.py
	$(VENV)/bin/coverage report

test-torch: $(VENV)/.dev
	$(VENV)/bin/pip install $(PIP_FLAGS) --index-url $(TORCH_INDEX) torch
	KERAS_BACKEND=numpy $(VENV)/bin/python -m pytest tests/test_torch.py tests/test_ragged.py

pytest-np1: $(VENV_NP1)/.dev
	$(VENV_NP1)/bin/python -c "import numpy; assert numpy.__version__.startswith('1.26'), numpy.__version__"
	$(VENV_NP1)/bin/python -m pytest -n $(JOBS)

test: check pytest pytest-np1

format: $(VENV)/.dev
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

bench: $(VENV)/.dev
	KERAS_BACKEND=numpy $(VENV)/bin/python benchmarks/bench_imdb.py

clean:
	rm -rf $(VENV) $(VENV_NP1) build dist .pytest_cache .mypy_cache .ruff_cache
	rm -f src/safenpz/_pickle/*.so
