# G-CNN targets, included by the top-level Makefile (run them from the repository root).
.PHONY: train-gcnn eval-gcnn prepare-gcnn bench-gcnn grid-gcnn report-gcnn

$(VENV)/.stamp-gcnn: constraints.txt shared/pyproject.toml projects/gcnn/pyproject.toml | $(PY)
	$(PIP) -e ./shared -e ./projects/gcnn
	@touch $@

# GCNN_DATA picks the preset configs/gcnn/<GCNN_DATA>.yaml: shapes (generated, offline; the default),
# eurosat, eurosat_cpu (32x32, base width 8), mnist_rot. GCNN_MODEL: cnn | c4 | c8 | c16 | d4 | so2 | e2c4 | e2c8 (e2cnn peer, needs e2cnn).
GCNN_DATA     ?= shapes
GCNN_MODEL    ?= c4
GCNN_DATA_DIR ?=
GCNN_RUN       = runs/gcnn/$(GCNN_DATA)/$(GCNN_MODEL)-seed$(SEED)
GCNN_PREP      = runs/gcnn/data

train-gcnn: $(VENV)/.stamp-gcnn ## train + evaluate one model (GCNN_DATA=shapes|eurosat|mnist_rot GCNN_MODEL=cnn|c4|c8|c16|d4|so2 SEED ARGS RESUME=1)
	$(PY) -m paperlab.gcnn.train --config configs/gcnn/$(GCNN_DATA).yaml model=$(GCNN_MODEL) seed=$(SEED) \
	  run_dir=$(GCNN_RUN) $(if $(GCNN_DATA_DIR),data_dir=$(GCNN_DATA_DIR),) $(ARGS) $(RESUME_ARG)

eval-gcnn: $(VENV)/.stamp-gcnn ## rotated-test accuracy, per-layer equivariance and invariance errors of a run (RUN=runs/gcnn/...)
	$(PY) -m paperlab.gcnn.evaluate $(or $(RUN),$(GCNN_RUN)) $(if $(GCNN_DATA_DIR),data_dir=$(GCNN_DATA_DIR),)

prepare-gcnn: $(VENV)/.stamp-gcnn ## decoded EuroSAT + rotated MNIST into runs/gcnn/data (from data/eurosat, data/mnist)
	$(PY) -m paperlab.gcnn.prepare eurosat-jpeg data/eurosat $(GCNN_PREP) --quality 75
	$(PY) -m paperlab.gcnn.prepare eurosat-pixels $(GCNN_PREP) $(GCNN_PREP)
	$(PY) -m paperlab.gcnn.prepare mnist-rot data/mnist $(GCNN_PREP) --seed 0

bench-gcnn: $(VENV)/.stamp-gcnn ## training throughput of every model on this machine (runs/gcnn/bench.json)
	$(PY) -m paperlab.gcnn.bench --out runs/gcnn/bench.json

grid-gcnn: $(VENV)/.stamp-gcnn ## the whole models x seeds grid as parallel processes (GRID=eurosat|eurosat_cpu|mnist_rot|mnist_rot_cpu_full; a GPU: scripts/device.sh)
	$(PY) -m paperlab.gcnn.grid $(or $(GRID),eurosat) --data-dir $(GCNN_PREP) --work runs/gcnn/grid \
	  --out runs/gcnn/grid-$(or $(GRID),eurosat).jsonl $(ARGS)

report-gcnn: $(VENV)/.stamp-gcnn ## README/REPORT tables and figures of projects/gcnn from the committed results
	$(PY) -m paperlab.gcnn.report --results projects/gcnn/results --readme projects/gcnn/README.md projects/gcnn/REPORT.md
