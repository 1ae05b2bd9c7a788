# The README's commands: `make demo` (train on the embedded faces) and `make test` (the suite).
# Each creates .venv/ on first use with the one-command install below.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP_ENV := PIP_CONSTRAINT=$(CURDIR)/requirements/constraints.txt \
           PIP_BUILD_CONSTRAINT=$(CURDIR)/requirements/build-constraints.txt
DEMO_OUT ?= result/demo
DEMO_ITERATIONS ?= 300
DEMO_BATCHSIZE ?= 16

.PHONY: venv demo test docs bench test-py312 clean

venv: $(VENV)/.installed web/node_modules/.package-lock.json

# The browser demo's JavaScript (onnxruntime-web), pinned by web/package-lock.json; served locally.
web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund

# pip >= 25.3 applies PIP_BUILD_CONSTRAINT to isolated builds (chainer's sdist needs setuptools<74
# there); older pips read PIP_CONSTRAINT for both, which holds nothing a build would refuse.
$(VENV)/.installed: setup.py requirements/constraints.txt requirements/build-constraints.txt
	bash .ci/install-system-deps
	bash .ci/bootstrap-venv $(PYTHON) $(VENV)
	$(PIP_ENV) $(PY) -m pip install -q -e '.[test,bench,docs]'
	touch $@

demo: venv
	$(PY) examples/train_faces.py --out $(DEMO_OUT) --iteration $(DEMO_ITERATIONS) \
		--batchsize $(DEMO_BATCHSIZE) --display-interval 50 --snapshot-interval 100
	@echo "Sample grids: $(DEMO_OUT)/preview/  loss plot: $(DEMO_OUT)/loss.png  weights: $(DEMO_OUT)/gen_iter_$(DEMO_ITERATIONS).npz"

test: venv
	$(PY) -m pytest tests -q --durations=15

docs: venv
	$(PY) -m sphinx -W -q -b html docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

# BENCH_ARGS e.g. "--batchsize 32 --repeats 3" or "--skip-own" (Chainer's own path is the slow part).
BENCH_ARGS ?=
bench: venv
	$(PY) bench/train_step.py $(BENCH_ARGS)

# Python 3.12 + numpy 2: a separate small venv proving the package imports and trains there.
test-py312:
	bash .ci/test-py312

clean:
	rm -rf $(VENV) .venv312 docs/_build result
