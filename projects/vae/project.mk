# VAE / VQ-VAE targets, included by the top-level Makefile (run them from the repository root).
.PHONY: train-vae train-vqvae train-vqvae-prior eval-vae report-vae

$(VENV)/.stamp-vae: constraints.txt shared/pyproject.toml projects/vae/pyproject.toml | $(PY)
	$(PIP) -e ./shared -e ./projects/vae
	@touch $@

# VAE_DATA picks the preset pair configs/vae/<VAE_DATA>.yaml (VAE) and <VAE_DATA>-vqvae.yaml (VQ-VAE):
# digits (bundled, offline; the default), mnist, olivetti, celeba. VAE_DATA_DIR overrides the preset's data_dir.
VAE_DATA     ?= digits
VAE_DATA_DIR ?=
VAE_ARGS      = seed=$(SEED) $(if $(VAE_DATA_DIR),data_dir=$(VAE_DATA_DIR),) $(STEPS_ARG) $(ARGS)
VAE_RUN_VAE   = runs/vae/$(VAE_DATA)/vae-seed$(SEED)
VAE_RUN_VQ    = runs/vae/$(VAE_DATA)/vqvae-seed$(SEED)
# RESUME=1 resumes each stage that has a checkpoint; a stage that never started (the prior of a killed
# VQ-VAE run) starts fresh. The top-level README index gets the headline only where it has the cell.
VAE_PRIOR_RESUME = $(if $(RESUME),$(if $(wildcard $(or $(RUN),$(VAE_RUN_VQ))/prior/checkpoints/last.pt),--resume,),)
VAE_INDEX     = $(if $(shell grep -s -l '<!-- headline:vae -->' README.md),--index README.md,)

train-vae: $(VENV)/.stamp-vae ## VAE (plain ELBO) + its evaluation (VAE_DATA=digits|mnist|olivetti|celeba SEED STEPS ARGS RESUME=1)
	$(PY) -m paperlab.vae.train --config configs/vae/$(VAE_DATA).yaml run_dir=$(VAE_RUN_VAE) $(VAE_ARGS) $(RESUME_ARG)
	$(PY) -m paperlab.vae.evaluate $(VAE_RUN_VAE) $(if $(VAE_DATA_DIR),data_dir=$(VAE_DATA_DIR),)

train-vqvae: $(VENV)/.stamp-vae ## VQ-VAE, then its transformer prior over codes, then evaluation (VAE_DATA SEED ... RESUME=1)
	$(PY) -m paperlab.vae.train --config configs/vae/$(VAE_DATA)-vqvae.yaml run_dir=$(VAE_RUN_VQ) $(VAE_ARGS) $(RESUME_ARG)
	$(PY) -m paperlab.vae.prior $(VAE_RUN_VQ) $(if $(VAE_DATA_DIR),data_dir=$(VAE_DATA_DIR),) $(VAE_PRIOR_RESUME)
	$(PY) -m paperlab.vae.evaluate $(VAE_RUN_VQ) $(if $(VAE_DATA_DIR),data_dir=$(VAE_DATA_DIR),)

train-vqvae-prior: $(VENV)/.stamp-vae ## train only the code prior of a VQ-VAE run (RUN=runs/vae/... ARGS=prior_steps=... RESUME=1)
	$(PY) -m paperlab.vae.prior $(or $(RUN),$(VAE_RUN_VQ)) $(ARGS) $(RESUME_ARG)

eval-vae: $(VENV)/.stamp-vae ## test metrics + recon/sample/interpolation figures of a run (RUN=runs/vae/<data>/<model>-seed1)
	$(PY) -m paperlab.vae.evaluate $(or $(RUN),$(VAE_RUN_VAE)) $(if $(VAE_DATA_DIR),data_dir=$(VAE_DATA_DIR),)

report-vae: $(VENV)/.stamp-vae ## README tables and plots of projects/vae from the committed results (COLLECT=1 copies runs/vae first)
	$(PY) -m paperlab.vae.report $(if $(COLLECT),--collect runs/vae,) --results projects/vae/results \
	  --readme projects/vae/README.md projects/vae/REPORT.md $(VAE_INDEX)
