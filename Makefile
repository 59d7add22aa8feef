# Two entry points (see README): `make demo` and `make test`. Both create the virtual
# environment on first use; later runs reuse it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The PyTorch pair that works on the project's CPU machines; override for other platforms,
# e.g. `make test TORCH="torch torchvision"`.
TORCH  ?= torch==2.14.1 torchvision==0.29.1

.PHONY: setup demo test bench clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/bebias data synth --out runs/benchmark

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/bench_loader.py

clean:
	rm -rf $(VENV) runs
