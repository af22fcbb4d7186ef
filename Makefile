# Two commands on a fresh machine: `make test` and `make example-sine`.
# Each creates .venv on first use and reinstalls only when setup.cfg or pyproject.toml change.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test example-sine bench clean

$(STAMP): setup.cfg pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "minidl needs Python 3.11 or newer, found " + sys.version.split()[0])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# One BLAS thread in tests: they time nothing, and small matmuls with two threads on a
# shared two-core machine are many times slower when the other core is busy.
test: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest -q

example-sine: $(STAMP)
	$(BIN)/python examples/sine.py

# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set on this workplace's machines for old OpenBLAS
# builds; numpy's current OpenBLAS picks its own kernels, so the benchmarks run without them.
bench: $(STAMP)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
