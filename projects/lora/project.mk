# LoRA targets, included by the top-level Makefile (run them from the repository root).
#   make train-lora                          offline default: a digits base (once), then LoRA rank 4 on the 9s
#   make train-lora LORA_DATA=mnist RANK=16  the real experiment: MNIST base (once, ~15 min), LoRA on Olivetti faces
#   make train-lora-full LORA_DATA=mnist     full fine-tuning of the same base on the same faces
#   make eval-lora LORA_DATA=mnist           FD on target and source for every finished run (LORA_N LORA_STEPS)
#   make sweep-lora                          the whole MNIST -> faces experiment (base, ranks, full, ablation, eval)
#   make report-lora                         README tables and the rank plot from projects/lora/results
.PHONY: train-lora train-lora-base train-lora-full eval-lora classifier-lora check-ddp-lora publish-lora \
        sweep-lora report-lora

$(VENV)/.stamp-lora: constraints.txt shared/pyproject.toml projects/lora/pyproject.toml | $(PY)
	$(PIP) -e ./shared -e ./projects/lora
	@touch $@

LORA_DATA    ?= digits
RANK         ?= 4
MODULES      ?= attn
LORA_N       ?= 1000
LORA_STEPS   ?= 10
LORA_RANKS   ?= 1 4 16 64
LORA_ADAPT    = $(if $(filter mnist,$(LORA_DATA)),olivetti,digits)
LORA_BASE_RUN = runs/lora/$(LORA_DATA)/base
LORA_TRAIN    = $(PY) -m paperlab.lora.train

train-lora-base: $(VENV)/.stamp-lora ## the base diffusion U-Net on the source (LORA_DATA=digits|mnist STEPS ARGS; RESUME=1)
	$(LORA_TRAIN) --config configs/lora/$(LORA_DATA)-base.yaml $(STEPS_ARG) $(ARGS) $(RESUME_ARG)

train-lora: $(VENV)/.stamp-lora ## LoRA adapter on the target, training the base first if needed (LORA_DATA RANK MODULES SEED ARGS; RESUME=1)
	@test -f $(LORA_BASE_RUN)/unet/config.json || $(MAKE) --no-print-directory train-lora-base ARGS= STEPS=
	$(LORA_TRAIN) --config configs/lora/$(LORA_ADAPT)-lora.yaml rank=$(RANK) modules=$(MODULES) seed=$(SEED) \
	  $(STEPS_ARG) $(ARGS) $(RESUME_ARG)

train-lora-full: $(VENV)/.stamp-lora ## full fine-tuning of the same base on the same target (LORA_DATA SEED ARGS; RESUME=1)
	@test -f $(LORA_BASE_RUN)/unet/config.json || $(MAKE) --no-print-directory train-lora-base ARGS= STEPS=
	$(LORA_TRAIN) --config configs/lora/$(if $(filter mnist,$(LORA_DATA)),olivetti-full,digits-lora).yaml \
	  $(if $(filter mnist,$(LORA_DATA)),,mode=full 'run_dir=runs/lora/digits/full-seed$${seed}') seed=$(SEED) \
	  $(STEPS_ARG) $(ARGS) $(RESUME_ARG)

classifier-lora: $(VENV)/.stamp-lora ## the Fréchet-distance feature classifier of both domains -> projects/lora/classifiers/
	$(PY) -m paperlab.lora.classifier --config configs/lora/$(LORA_DATA)-base.yaml $(ARGS)

eval-lora: $(VENV)/.stamp-lora ## FD target/source, eps-losses, merged==unmerged for every finished run in runs/lora/LORA_DATA (LORA_N LORA_STEPS)
	$(PY) -m paperlab.lora.evaluate $(LORA_BASE_RUN) --n $(LORA_N) --floor runs/lora/$(LORA_DATA)/floors.json
	$(PY) -m paperlab.lora.evaluate $(or $(RUNS),$(dir $(wildcard runs/lora/$(LORA_DATA)/*/summary.json))) \
	  --n $(LORA_N) --steps $(LORA_STEPS)

publish-lora: $(VENV)/.stamp-lora ## copy the small files of evaluated runs + sample grids into projects/lora/results/LORA_DATA
	$(PY) -m paperlab.lora.publish runs/lora/$(LORA_DATA) --results projects/lora/results/$(LORA_DATA)
	cp runs/lora/$(LORA_DATA)/floors.json projects/lora/results/$(LORA_DATA)/

check-ddp-lora: $(VENV)/.stamp-lora ## 2 processes (torchrun, gloo) vs 1 process, same global batch: adapters must agree
	$(PY) -m paperlab.lora.ddp_check --out projects/lora/results/ddp_check.json

bench-lora: $(VENV)/.stamp-lora ## sampling cost of base, unmerged and merged LoRA models (same noise and batch) -> results/mnist/merge_bench.json
	$(PY) -m paperlab.lora.bench runs/lora/mnist/base runs/lora/mnist/lora-r4-attn-seed1 runs/lora/mnist/lora-r64-attn-seed1 \
	  runs/lora/mnist/lora-r4-attn+conv+time-seed1 runs/lora/mnist/lora-r16-attn+conv+time-seed1 \
	  --n 200 --steps 10 --repeats 3 --out projects/lora/results/mnist/merge_bench.json

sweep-lora: $(VENV)/.stamp-lora ## the whole MNIST -> faces experiment (~50 CPU-minutes): base, LORA_RANKS, full, ablation, eval, publish
	$(MAKE) --no-print-directory classifier-lora LORA_DATA=mnist ARGS=
	@test -f runs/lora/mnist/base/unet/config.json || $(MAKE) --no-print-directory train-lora-base LORA_DATA=mnist ARGS=
	for r in $(LORA_RANKS); do $(MAKE) --no-print-directory train-lora LORA_DATA=mnist RANK=$$r SEED=1 ARGS= || exit 1; done
	$(MAKE) --no-print-directory train-lora LORA_DATA=mnist RANK=4 SEED=2 ARGS=
	$(MAKE) --no-print-directory train-lora LORA_DATA=mnist RANK=4 MODULES=attn+conv+time SEED=1 ARGS=
	for s in 1 2; do $(MAKE) --no-print-directory train-lora-full LORA_DATA=mnist SEED=$$s ARGS= || exit 1; done
	$(MAKE) --no-print-directory eval-lora publish-lora LORA_DATA=mnist
	$(MAKE) --no-print-directory report-lora

report-lora: $(VENV)/.stamp-lora ## README/REPORT tables and the rank plot from projects/lora/results
	$(PY) -m paperlab.lora.report --results projects/lora/results --readme projects/lora/README.md projects/lora/REPORT.md \
	  $(if $(shell grep -s -l '<!-- headline:lora -->' README.md),--index README.md,)
