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

# pre-train MoCo+BE on the embedded benchmark, linear-probe it on labels that carry no
# background information, evaluate on in-distribution and background-conflict videos,
# and probe how much its decisions depend on the background
demo: setup
	$(BIN)/bebias train --out runs/train
	$(BIN)/bebias finetune runs/train/model.pth --linear --split train-unbiased --out runs/linear
	$(BIN)/bebias eval runs/linear/model.pth
	$(BIN)/bebias probe runs/linear/model.pth --suite quick --out runs/probe

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/bench_loader.py --out reports/bench/loader.json
	$(BIN)/python bench/bench_train.py --other-steps 2 --out reports/bench/train.json
	$(BIN)/python bench/bench_probe.py --out reports/bench/probe.json

clean:
	rm -rf $(VENV) runs
