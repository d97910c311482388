# 1-Lipschitz networks (spectral normalisation, Björck, deel-torchlip peer), included by the top-level Makefile.
.PHONY: train-lipschitz train-lipschitz-table train-lipschitz-long train-lipschitz-pair-ce pilot-lipschitz eval-lipschitz bench-lipschitz sweep-lipschitz report-lipschitz

$(VENV)/.stamp-lipschitz: constraints.txt shared/pyproject.toml projects/lipschitz/pyproject.toml | $(PY)
	$(PIP) -e ./shared -e "./projects/lipschitz[peer]"
	@touch $@

# LIP_PRESET picks configs/lipschitz/<LIP_PRESET>.yaml: synthetic (offline default) or cifar10-<model>,
# model = baseline | spectral | bjorck | torchlip. CIFAR-10: data/cifar10-jpg (JPEG copy) or DATA_DIR=<folder
# with torchvision's cifar-10-batches-py/>.
LIP_PRESET   ?= synthetic
LIP_DATA_DIR  = $(if $(DATA_DIR),data_dir=$(DATA_DIR),)
LIP_RUN       = $(or $(RUN),runs/lipschitz/$(patsubst cifar10-%,cifar10/%,$(LIP_PRESET))-seed$(SEED))
LIP_MODELS    = baseline spectral bjorck torchlip
LIP_INDEX     = $(if $(shell grep -s -l '<!-- headline:lipschitz -->' README.md),--index README.md,)

train-lipschitz: $(VENV)/.stamp-lipschitz ## train + evaluate one model (LIP_PRESET=synthetic|cifar10-{baseline,spectral,bjorck,torchlip} SEED ARGS RESUME=1)
	$(PY) -m paperlab.lipschitz.train --config configs/lipschitz/$(LIP_PRESET).yaml run_dir=$(LIP_RUN) seed=$(SEED) $(LIP_DATA_DIR) $(ARGS) $(RESUME_ARG)
	$(PY) -m paperlab.lipschitz.evaluate $(LIP_RUN) $(LIP_DATA_DIR)

train-lipschitz-table: $(VENV)/.stamp-lipschitz ## the four CIFAR-10 models of the table at equal budget, each then evaluated (SEED DATA_DIR RESUME=1)
	for m in $(LIP_MODELS); do \
	  $(PY) -m paperlab.lipschitz.train --config configs/lipschitz/cifar10-$$m.yaml seed=$(SEED) time_limit_s=0 $(LIP_DATA_DIR) $(ARGS) $(RESUME_ARG) && \
	  $(PY) -m paperlab.lipschitz.evaluate runs/lipschitz/cifar10/$$m-seed$(SEED) $(LIP_DATA_DIR) || exit 1; done

train-lipschitz-long: $(VENV)/.stamp-lipschitz ## the best 1-Lipschitz recipe: Björck net, offset CE, long cosine run, then evaluated (SEED DATA_DIR ARGS RESUME=1; stops after time_limit_s, resume in chunks)
	$(PY) -m paperlab.lipschitz.train --config configs/lipschitz/cifar10-bjorck-cert.yaml seed=$(SEED) $(LIP_DATA_DIR) $(ARGS) $(RESUME_ARG)

train-lipschitz-pair-ce: $(VENV)/.stamp-lipschitz ## Björck vs deel-torchlip with the long run's loss (CE tau 5, offset 0.2) at the table's 6 epochs, each then evaluated (SEED DATA_DIR RESUME=1)
	for m in bjorck torchlip; do \
	  $(PY) -m paperlab.lipschitz.train --config configs/lipschitz/cifar10-$$m.yaml loss=ce temperature=5 offset=0.2 \
	    run_dir=runs/lipschitz/cifar10/$$m-ce-seed$(SEED) seed=$(SEED) time_limit_s=0 $(LIP_DATA_DIR) $(ARGS) $(RESUME_ARG) || exit 1; done

pilot-lipschitz: $(VENV)/.stamp-lipschitz ## the short loss pilots behind the long run's recipe: Björck net, 2 epochs each, scored on 2000 test images (SEED RESUME=1)
	for spec in "hkr margin=0.5" "ce temperature=10" "ce temperature=5" "ce temperature=10 offset=0.2" \
	  "ce temperature=5 offset=0.2" "ce temperature=10 offset=0.4" $(LIP_PILOTS); do set -- $$spec; \
	  run=runs/lipschitz/pilot/$$(echo "$$*" | tr ' =' '--'); \
	  $(PY) -m paperlab.lipschitz.train --config configs/lipschitz/cifar10-pilot.yaml loss=$$* run_dir=$$run seed=$(SEED) $(LIP_DATA_DIR) $(RESUME_ARG) || exit 1; done

eval-lipschitz: $(VENV)/.stamp-lipschitz ## clean / certified / PGD accuracy and the Lipschitz bounds of a run (RUN=runs/lipschitz/...)
	$(PY) -m paperlab.lipschitz.evaluate $(LIP_RUN) $(LIP_DATA_DIR) $(ARGS)

bench-lipschitz: $(VENV)/.stamp-lipschitz ## spectral norm vs Björck: cost per step and singular values of the trained CIFAR-10 models
	$(PY) -m paperlab.lipschitz.analysis --runs runs/lipschitz/cifar10 --out runs/lipschitz/analysis $(ARGS)

sweep-lipschitz: $(VENV)/.stamp-lipschitz ## margin / temperature sweep of the Björck net on CIFAR-10 (short budget; SEED RESUME=1)
	for spec in "hkr margin=0.2" "hkr margin=1.0" "ce temperature=3" "ce temperature=30"; do set -- $$spec; \
	  run=runs/lipschitz/sweep/$$1-$$(echo $$2 | tr = -)-seed$(SEED); \
	  $(PY) -m paperlab.lipschitz.train --config configs/lipschitz/cifar10-sweep.yaml loss=$$1 $$2 run_dir=$$run seed=$(SEED) $(LIP_DATA_DIR) $(RESUME_ARG) && \
	  $(PY) -m paperlab.lipschitz.evaluate $$run $(LIP_DATA_DIR) || exit 1; done

report-lipschitz: $(VENV)/.stamp-lipschitz ## README tables and figures of projects/lipschitz from committed results (COLLECT=1 copies runs/lipschitz first)
	$(PY) -m paperlab.lipschitz.report $(if $(COLLECT),--collect runs/lipschitz,) --results projects/lipschitz/results \
	  --readme projects/lipschitz/README.md projects/lipschitz/REPORT.md $(LIP_INDEX)
