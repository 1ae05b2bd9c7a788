# The README's commands: `make demo` (train on the embedded faces) and `make test` (the suite).
# Each creates .venv/ on first use with the one-command install below (numpy 2, no PyTorch).
# Another interpreter or stack: make test PYTHON=python3.13 VENV=.venv313
#                               make test PYTHON=python3.11 VENV=.venv311 CONSTRAINTS=requirements/numpy1.txt
PYTHON ?= python3
VENV ?= .venv
CONSTRAINTS ?= requirements/constraints.txt
BENCH_VENV ?= .venv-bench
BENCH_PYTHON ?= $(PYTHON)
PY := $(VENV)/bin/python
PIP_ENV := PIP_CONSTRAINT=$(abspath $(CONSTRAINTS)) \
           PIP_BUILD_CONSTRAINT=$(CURDIR)/requirements/build-constraints.txt
DEMO_OUT ?= result/demo
# The demo's recipe (issue 21, bench/RESULTS.md): the faithful models at 64 px, batch 16 (the study's
# winner), with a moving average of G (decay 0.99) drawing the grids: coloured faces in 1,500 iterations
# (24,000 images); batch 32 for 500 drew pale, soft ones.
DEMO_ITERATIONS ?= 1500
DEMO_BATCHSIZE ?= 16
DEMO_SIZE ?= 64
DEMO_EMA ?= 0.99

.PHONY: venv demo test docs bench clean

venv: $(VENV)/.installed web/node_modules/.package-lock.json

# The browser demo's JavaScript (onnxruntime-web), pinned by web/package-lock.json; served locally.
web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund

# pip >= 25.3 applies PIP_BUILD_CONSTRAINT to isolated builds (chainer's sdist needs setuptools<74
# there); older pips read PIP_CONSTRAINT for both, which holds nothing a build would refuse.
$(VENV)/.installed: setup.py requirements/constraints.txt requirements/build-constraints.txt $(CONSTRAINTS)
	bash .ci/install-system-deps
	bash .ci/bootstrap-venv $(PYTHON) $(VENV)
	$(PIP_ENV) $(PY) -m pip install -q -e '.[test,docs]'
	touch $@

demo: venv
	@echo "Demo recipe: the faithful models at $(DEMO_SIZE) px, batch $(DEMO_BATCHSIZE), plus a moving average of G" \
		"(--ema $(DEMO_EMA), not in the 2015 original) that draws the grids; about 6 minutes on 2 cores"
	$(PY) examples/train_faces.py --out $(DEMO_OUT) --iteration $(DEMO_ITERATIONS) --size $(DEMO_SIZE) \
		--batchsize $(DEMO_BATCHSIZE) --ema $(DEMO_EMA) --display-interval 100 --snapshot-interval 250
	@echo "Sample grids: $(DEMO_OUT)/preview/  loss plot: $(DEMO_OUT)/loss.png" \
		"weights: $(DEMO_OUT)/gen_ema_iter_$(DEMO_ITERATIONS).npz (averaged G), gen_iter_$(DEMO_ITERATIONS).npz (raw G)"

# PYTEST_ARGS e.g. "-x", or the --deselect list .ci/run gives its secondary stacks. The suite runs on
# TEST_PROCESSES processes (pytest-xdist), a test file to a process, its longest files first
# (tests/conftest.py); TEST_PROCESSES=0 runs it in this one process.
PYTEST_ARGS ?=
TEST_PROCESSES ?= 2
test: venv
	$(PY) -m pytest tests -q -n $(TEST_PROCESSES) --dist loadfile --durations=15 $(PYTEST_ARGS)

docs: venv
	$(PY) -m sphinx -W -q -b html docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

# The benchmarks compare against PyTorch, which lives only in their own venv ($(BENCH_VENV)).
# BENCH_ARGS e.g. "--batchsize 32 --repeats 3" or "--skip-own" (Chainer's own path is the slow part).
BENCH_ARGS ?=
$(BENCH_VENV)/.installed: setup.py requirements/constraints.txt requirements/build-constraints.txt
	bash .ci/bootstrap-venv $(BENCH_PYTHON) $(BENCH_VENV)
	$(PIP_ENV) $(BENCH_VENV)/bin/python -m pip install -q -e '.[bench]'
	touch $@

bench: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python bench/train_step.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(BENCH_VENV) .venv311 .venv313 docs/_build result
