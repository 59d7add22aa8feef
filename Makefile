# Two entry points (see README): `make demo` and `make test` (`make test-fast` for the edit loop).
# Both create the virtual environment on first use; later runs reuse it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The PyTorch pair that works on the project's CPU machines; override for other platforms,
# e.g. `make test TORCH="torch torchvision"`.
TORCH  ?= torch==2.14.1 torchvision==0.29.1

.PHONY: setup browser tex demo test test-fast coverage bench clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[test,hf]"
	touch $@

setup: $(VENV)/.installed

# the whole story on the embedded benchmark (bebias demo): supervised models trained on
# biased and unbiased data, the biased one with a debiasing augmentation, MoCo and MoCo+BE
# linear-probed; every model evaluated, probed, explained with Grad-CAM; one HTML report
demo: setup
	$(BIN)/bebias demo --out runs/demo

# every test, a worker per core; loadfile keeps a file's tests (and its module fixtures) on one worker
test: setup browser tex
	$(BIN)/python -m pytest -n auto --dist loadfile

# the edit loop: no demo / real trainings, no process groups, no browser, no fuzzing
FAST := not slow and not multiprocess and not browser and not fuzz
test-fast: setup
	$(BIN)/python -m pytest -n auto --dist loadfile -m "$(FAST)"

# line coverage of bebias/ over the whole suite, `python -m bebias` subprocesses included
# ([tool.coverage.run] in pyproject.toml); slower than `make test`
coverage: setup browser tex
	rm -f .coverage .coverage.*
	$(BIN)/python -m pytest -n auto --dist loadfile --cov=bebias --cov-report=term:skip-covered

# the browser test of `bebias report`'s HTML drives the system's headless Chromium (Debian's
# package): installed here when it is missing and apt-get can be used (as root); otherwise
# that one test is skipped, with a warning
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium (apt-get) for the report's browser test"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	      echo "WARNING: apt-get could not install chromium: the report's browser test will be SKIPPED"; \
	  else \
	    echo "WARNING: no chromium and no root apt-get: the report's browser test will be SKIPPED"; \
	  fi

# the report's LaTeX tables are compiled by a test (pdflatex, booktabs): Debian's TeX installed here
# when missing and apt-get can be used (as root); otherwise that test is skipped, with a warning
tex:
	@command -v pdflatex >/dev/null 2>&1 || \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing pdflatex (apt-get texlive-latex-base texlive-latex-recommended) for the report's LaTeX test"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	        texlive-latex-base texlive-latex-recommended >/dev/null; } || \
	      echo "WARNING: apt-get could not install pdflatex: the report's LaTeX test will be SKIPPED"; \
	  else \
	    echo "WARNING: no pdflatex and no root apt-get: the report's LaTeX test will be SKIPPED"; \
	  fi

bench: setup
	$(BIN)/python bench/bench_loader.py --out reports/bench/loader.json
	$(BIN)/python bench/bench_train.py --other-steps 2 --out reports/bench/train.json
	$(BIN)/python bench/bench_probe.py --out reports/bench/probe.json
	$(BIN)/python bench/bench_multi_probe.py --single --out reports/bench/multi_probe.json
	$(BIN)/python bench/bench_cam.py --out reports/bench/cam.json
	$(BIN)/python bench/readme_table.py

clean:
	rm -rf $(VENV) runs .coverage .coverage.*
