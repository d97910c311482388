# DDPM targets, included by the top-level Makefile (run them from the repository root).
#   make train-ddpm                          offline default: sklearn digits, a few minutes on one CPU thread
#   make train-ddpm DDPM_PRESET=mnist        data/mnist (DDPM_DATA=dir for another folder)
#   make train-ddpm DDPM_PRESET=mnist RESUME=1   continue a stopped run (or ARGS="--resume")
#   make sample-ddpm DDPM_PRESET=mnist       grid + reverse-process GIF from the run's checkpoint
#   make eval-ddpm DDPM_PRESET=mnist         Fréchet distance (classifier features) table, DDPM vs DDIM, EMA vs raw
#   make classifier-ddpm DDPM_PRESET=mnist   the feature classifier behind it -> projects/ddpm/classifiers/
#   make report-ddpm                         README tables and loss plots from projects/ddpm/results
.PHONY: train-ddpm sample-ddpm eval-ddpm classifier-ddpm report-ddpm

$(VENV)/.stamp-ddpm: constraints.txt shared/pyproject.toml projects/ddpm/pyproject.toml | $(PY)
	$(PIP) -e ./shared -e ./projects/ddpm
	@touch $@

DDPM_PRESET ?= digits
DDPM_DATA ?=
DDPM_RUN = $(or $(RUN),runs/ddpm/$(DDPM_PRESET)-seed$(SEED))
DDPM_DATA_ARG = $(if $(DDPM_DATA),data_dir=$(DDPM_DATA),)
DDPM_SAMPLER ?= ddim
DDPM_STEPS ?= 50
DDPM_N ?= 2000
DDPM_ROWS ?= ddim:10 ddim:20 ddim:50 ddim:100 ddim:20:1 ddim:100:1 ddpm:1000

train-ddpm: $(VENV)/.stamp-ddpm ## DDPM (DDPM_PRESET=digits|mnist|olivetti|cifar10|celeba|celeba-gpu DDPM_DATA=dir SEED STEPS ARGS; RESUME=1)
	$(PY) -m paperlab.ddpm.train --config configs/ddpm/$(DDPM_PRESET).yaml seed=$(SEED) run_dir=$(DDPM_RUN) \
	  $(DDPM_DATA_ARG) $(STEPS_ARG) $(ARGS) $(RESUME_ARG)

sample-ddpm: $(VENV)/.stamp-ddpm ## samples + reverse-process GIF of a DDPM run (DDPM_SAMPLER=ddim|ddpm DDPM_STEPS RUN)
	$(PY) -m paperlab.ddpm.sample $(DDPM_RUN)/checkpoints/last.pt --sampler $(DDPM_SAMPLER) \
	  $(if $(filter ddim,$(DDPM_SAMPLER)),--steps $(DDPM_STEPS),) --gif $(DDPM_RUN)/samples/reverse-$(DDPM_SAMPLER).gif

eval-ddpm: $(VENV)/.stamp-ddpm ## Fréchet distance in classifier features, DDPM vs DDIM, EMA vs raw (DDPM_N DDPM_ROWS DDPM_DATA RUN)
	$(PY) -m paperlab.ddpm.evaluate $(DDPM_RUN)/checkpoints/last.pt --n $(DDPM_N) --rows $(DDPM_ROWS) --ema both \
	  $(if $(DDPM_DATA),--data-dir $(DDPM_DATA),) $(ARGS)

DDPM_CLF_ARGS ?= $(if $(filter olivetti,$(DDPM_PRESET)),--epochs 300 --batch-size 32 --lr 2e-3 --augment 2 --weight-decay 5e-4,--epochs 3)

classifier-ddpm: $(VENV)/.stamp-ddpm ## train + save the FD feature classifier of a dataset (DDPM_PRESET DDPM_CLF_ARGS)
	$(PY) -m paperlab.ddpm.classifier --config configs/ddpm/$(DDPM_PRESET).yaml $(DDPM_DATA_ARG) $(DDPM_CLF_ARGS)

report-ddpm: $(VENV)/.stamp-ddpm ## README tables and loss plots in projects/ddpm from the committed results
	$(PY) -m paperlab.ddpm.report --results projects/ddpm/results --readme projects/ddpm/README.md projects/ddpm/REPORT.md
