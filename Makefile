# toonvision: `make demo` and `make test` do all set-up on a fresh machine (Python 3.11+).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO ?= demo
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PIP_DISABLE_PIP_VERSION_CHECK = 1

.PHONY: install test demo lint bench browser clean help

help:
	@echo "make demo    set up .venv and run the whole pipeline on generated data (into $(DEMO)/)"
	@echo "make test    set up .venv and run the test suite"
	@echo "make lint    ruff over the code"
	@echo "make bench   run the benchmarks (slow; figures go to benchmarks/README.md by hand)"
	@echo "make clean   remove .venv, caches and the demo output"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --editable .
	touch $@

install: $(VENV)/.installed

# The tests also exercise the optional MLflow tracking (toonvision[tracking]).
$(VENV)/.tracking: requirements-tracking.txt $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -r requirements-tracking.txt
	touch $@

# Headless Chromium lets the report test check the page as a browser shows it. Optional:
# without root or apt the test skips with a reason.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium could not be installed: the page test will be skipped"; \
	  else echo "chromium not installed (needs root + apt): the page test will be skipped"; fi; }

# The tests also run comparisons on Ray workers (toonvision[parallel]: ray core, ~240 MB).
$(VENV)/.parallel: requirements-parallel.txt $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -r requirements-parallel.txt
	touch $@

test: install $(VENV)/.tracking $(VENV)/.parallel browser
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check toonvision tests benchmarks

bench: install
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# The demo regenerates $(DEMO)/ from scratch: synthetic screenshots -> crops -> stats ->
# split -> a short baseline-vs-optimized comparison -> the dataset doctor -> a heatmap report
# of the best model. Its settings (docs/synth.md, "The demo's comparison"): half Cogs, half
# Toons (--cog-share 0.5), so that no model looks good by answering the majority class;
# 300x100, half the article's size, the smallest at which the optimized configuration's
# dropout of 0.9 keeps enough features to learn; 20 epochs; 3 runs. --workers 1: no
# once-per-machine engine calibration in the demo's 3 minutes. The doctor leaves out its
# heatmaps (the report has them) and the report shows fewer pictures than its defaults.
DEMO_SYNTH ?= --screenshots 60 --seed 0 --cog-share 0.5
DEMO_COMPARE ?= --runs 3 --epochs 20 --image-size 300 100 --workers 1
demo: install
	rm -rf $(DEMO)
	$(BIN)/toonvision synth --out $(DEMO)/screenshots $(DEMO_SYNTH)
	$(BIN)/toonvision extract $(DEMO)/screenshots --data-dir $(DEMO)/data
	$(BIN)/toonvision stats --data-dir $(DEMO)/data --out $(DEMO)/stats
	$(BIN)/toonvision split --data-dir $(DEMO)/data --seed 0
	$(BIN)/toonvision compare --data-dir $(DEMO)/data $(DEMO_COMPARE) \
	  --out $(DEMO)/runs/compare --cache-dir $(DEMO)/cache --no-tracking
	$(BIN)/toonvision doctor $(DEMO)/runs/compare --data-dir $(DEMO)/data --top 8 --no-gradcam
	TOONVISION=$(BIN)/toonvision SAMPLES=8 FILTERS=4 EXPLAIN=4 scripts/heatmap_report.sh \
	  $(DEMO)/runs/compare $(DEMO)/data $(DEMO)/reports/best
	@echo "demo finished: everything is under $(DEMO)/"
	@echo "  comparison: $(DEMO)/runs/compare/summary.csv, learning_curves.png, boxplots.png"
	@echo "  doctor:     $(DEMO)/runs/compare/doctor/index.html (suspect labels, duplicates)"
	@echo "  report:     $(DEMO)/reports/best/index.html (open it in a browser)"

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .ruff_cache
