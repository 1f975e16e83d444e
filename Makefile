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

.PHONY: setup demo test cycles clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(if $(TORCH),$(BIN)/python -m pip install -q "$(TORCH)")
	$(BIN)/python -m pip install -q -e ".[dev,optics]"
	touch $(STAMP)

setup: $(STAMP)

# The main job on the embedded default: compile the flagship spec, then a short CPU training run.
demo: setup
	$(BIN)/bkdsl compile specs/phase8.bk -o out/phase8 --run
	$(BIN)/bkdsl train specs/phase8.bk --set train.steps=60 --set train.batch=16 --out runs/demo-phase8

# No import cycle between modules, imports inside functions included (tools/import_cycles.py).
cycles: setup
	$(BIN)/python tools/import_cycles.py

test: setup cycles
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 -q tests

clean:
	rm -rf out runs .pytest_cache
