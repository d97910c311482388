# GNN targets on ZINC-12k, included by the top-level Makefile (run them from the repository root).
.PHONY: train-gnn train-gnn-zinc eval-gnn data-gnn bench-gnn report-gnn

$(VENV)/.stamp-gnn: constraints.txt shared/pyproject.toml projects/gnn/pyproject.toml | $(PY)
	$(PIP) -e ./shared -e ./projects/gnn
	@touch $@

# GNN_MODEL picks the preset configs/gnn/zinc-<GNN_MODEL>.yaml: gcn, gin, gine (default), gatedgcn, gt, gt-rwse, gtn, gps.
GNN_MODEL    ?= gine
GNN_DATA_DIR ?= data/zinc
GNN_SPLIT    ?= test
GNN_INDEX     = $(if $(shell grep -s -l '<!-- headline:gnn -->' README.md),--index README.md,)

train-gnn: $(VENV)/.stamp-gnn ## offline default: GINE on synthetic molecule-like graphs, ~1 min (SEED ARGS RESUME=1)
	$(PY) -m paperlab.gnn.train --config configs/gnn/synthetic.yaml seed=$(SEED) $(ARGS) $(RESUME_ARG)

train-gnn-zinc: $(VENV)/.stamp-gnn ## one model on ZINC-12k (GNN_MODEL=gcn|gin|gine|gatedgcn|gt|gt-rwse|gtn|gps SEED GNN_DATA_DIR ARGS RESUME=1)
	$(PY) -m paperlab.gnn.train --config configs/gnn/zinc-$(GNN_MODEL).yaml seed=$(SEED) data_dir=$(GNN_DATA_DIR) $(ARGS) $(RESUME_ARG)

eval-gnn: $(VENV)/.stamp-gnn ## test MAE + predictions of saved runs (RUN="runs/gnn/zinc/gine-seed1 ..." GNN_SPLIT=test|official-test)
	$(PY) -m paperlab.gnn.evaluate $(or $(RUN),runs/gnn/zinc/$(GNN_MODEL)-seed$(SEED)) --split $(GNN_SPLIT)

data-gnn: $(VENV)/.stamp-gnn ## rebuild the official val/test y and graphs from SMILES and compare; ring penalties of every molecule (GNN_DATA_DIR)
	$(PY) -m paperlab.gnn.data check data_dir=$(GNN_DATA_DIR)
	$(PY) -m paperlab.gnn.data rings data_dir=$(GNN_DATA_DIR)

bench-gnn: $(VENV)/.stamp-gnn ## training graphs/s of every model on this CPU (runs/gnn/bench.json)
	$(PY) -m paperlab.gnn.bench data_dir=$(GNN_DATA_DIR) $(ARGS)

report-gnn: $(VENV)/.stamp-gnn ## README/REPORT tables and plots from projects/gnn/results (COLLECT=1 copies runs/gnn first)
	$(PY) -m paperlab.gnn.report $(if $(COLLECT),--collect runs/gnn,) --results projects/gnn/results \
	  --readme projects/gnn/README.md projects/gnn/REPORT.md $(GNN_INDEX)
