# Two entry points (README): `make demo` and `make test`. Both set up .venv first.
#
# TORCH pins the PyTorch build the set-up installs. On these machines torch==2.13.0 is a local CPU
# build; GPU users install their CUDA build of torch first and run `make setup TORCH=` (empty: keep
# the installed torch), see README "GPU".
PY      ?= python3
VENV    ?= .venv
TORCH   ?= torch==2.13.0
BIN      = $(VENV)/bin
STAMP    = $(VENV)/.bkdsl-installed

.PHONY: setup demo demo-phase8 test cycles clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(if $(TORCH),$(BIN)/python -m pip install -q "$(TORCH)")
	$(BIN)/python -m pip install -q -e ".[dev,optics]"
	touch $(STAMP)

setup: $(STAMP)

# The promise in under a minute on a CPU: a starter spec (`bkdsl new`) whose claim is proven at compile
# time, a false claim refused with the probe's number (specs/refused/rk4_symplectic.bk: `check` exits 1 by design),
# the starter trained, then what was written where and what the numbers mean (bkdsl/tour.py).
# The flagship: `make demo-phase8`.
demo: setup
	rm -rf out/demo runs/demo
	$(BIN)/bkdsl new out/demo/starter.bk
	$(BIN)/bkdsl compile out/demo/starter.bk -o out/demo/compiled --run
	@echo "--- a false claim: rk4 is not symplectic (bkdsl check must exit 1) ---"
	$(BIN)/bkdsl check specs/refused/rk4_symplectic.bk 2> out/demo/refused.txt; test $$? -eq 1
	@cat out/demo/refused.txt
	$(BIN)/bkdsl train out/demo/starter.bk --out runs/demo
	$(BIN)/python -m bkdsl.tour --spec out/demo/starter.bk --compiled out/demo/compiled --refused out/demo/refused.txt --run runs/demo

# The flagship spec: compile, then a short CPU training run.
demo-phase8: setup
	$(BIN)/bkdsl compile specs/phase8.bk -o out/phase8 --run
	$(BIN)/bkdsl train specs/phase8.bk --set train.steps=60 --set train.batch=16 --out runs/demo-phase8

# No import cycle between modules, imports inside functions included (tools/import_cycles.py).
cycles: setup
	$(BIN)/python tools/import_cycles.py

test: setup cycles
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 -q tests

clean:
	rm -rf out runs .pytest_cache
