# Two commands on a fresh machine: `make test` and `make example-sine`.
# Each creates .venv on first use and reinstalls only when setup.cfg or pyproject.toml change.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# BLAS threads for tests and examples: their matrices are small, where a second OpenBLAS
# thread gains little and, when another process holds a core, makes each product many
# times slower. Override with `make example-sine BLAS_THREADS=2`.
BLAS_THREADS ?= 1
RUN    := OPENBLAS_NUM_THREADS=$(BLAS_THREADS) $(BIN)/python

.PHONY: test example-sine example-adding example-text example-forecast example-classify example-seq2seq notebooks docs docs-serve bench clean

$(STAMP): setup.cfg pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "minidl needs Python 3.11 or newer, found " + sys.version.split()[0])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(RUN) -m pytest -q

# The notebooks of examples/notebooks/, executed top to bottom into out/notebooks/ (with their
# outputs and plots; the committed notebooks have none). Installs the notebook extra.
NB_STAMP := $(VENV)/.notebook-installed
$(NB_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[notebook]'
	touch $(NB_STAMP)

notebooks: $(NB_STAMP)
	$(RUN) tools/run_notebooks.py

# The documentation site: docs/ (and the docstrings, through mkdocstrings) into site/, in
# strict mode: a broken link, a page missing from the nav or a malformed docstring fails.
DOCS_STAMP := $(VENV)/.docs-installed
$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict
	@echo "site built: open site/index.html, or serve it with make docs-serve"

docs-serve: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs serve

example-sine: $(STAMP)
	$(RUN) examples/sine.py

example-adding: $(STAMP)
	$(RUN) examples/adding.py

example-text: $(STAMP)
	$(RUN) examples/text.py

example-forecast: $(STAMP)
	$(RUN) examples/forecast.py

example-classify: $(STAMP)
	$(RUN) examples/classify.py

example-seq2seq: $(STAMP)
	$(RUN) examples/seq2seq.py

# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set on this workplace's machines for old OpenBLAS
# builds; numpy's current OpenBLAS picks its own kernels, so the benchmarks run without them.
bench: $(STAMP)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache site
