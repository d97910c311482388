# RLHF targets, included by the top-level Makefile (run them from the repository root).
.PHONY: train-rlhf train-rlhf-goodhart train-rlhf-sft pairs-rlhf train-rlhf-rm train-rlhf-ppo train-rlhf-rloo train-rlhf-grpo \
        train-rlhf-hh eval-rlhf report-rlhf bench-rlhf

$(VENV)/.stamp-rlhf: constraints.txt shared/pyproject.toml projects/rlhf/pyproject.toml | $(PY)
	$(PIP) -e ./shared -e ./projects/rlhf
	@touch $@

# RLHF_PRESET picks configs/rlhf/<preset>.yaml; every stage of one seed lives in runs/rlhf/<experiment>/seed<SEED>/.
RLHF_PRESET ?= shakespeare
RLHF_CFG     = --config configs/rlhf/$(RLHF_PRESET).yaml seed=$(SEED) $(ARGS)
RLHF_INDEX   = $(if $(shell grep -s -l '<!-- headline:rlhf -->' README.md),--index README.md,)

train-rlhf: $(VENV)/.stamp-rlhf ## the whole RLHF pipeline, each stage timed (runs/.../timing.json): base LM, pairs, reward model, PPO, RLOO, GRPO, evaluation (SEED ARGS RESUME=1)
	$(PY) -m paperlab.rlhf.pipeline $(RLHF_CFG) $(RESUME_ARG)

train-rlhf-goodhart: $(VENV)/.stamp-rlhf ## over-optimisation ablation on the base model of `make train-rlhf RLHF_PRESET=shakespeare-fast` (seed 1): PPO without KL penalty against a weak and a clean-label proxy, and against a proxy of the vader-rep gold (SEED RESUME=1)
	$(PY) -m paperlab.rlhf.pipeline --stages pairs,rm,ppo,eval --config configs/rlhf/goodhart-weak.yaml seed=$(SEED) $(ARGS) $(RESUME_ARG)
	$(PY) -m paperlab.rlhf.pipeline --stages pairs,rm,ppo,eval --config configs/rlhf/goodhart-clean.yaml seed=$(SEED) $(ARGS) $(RESUME_ARG)
	$(PY) -m paperlab.rlhf.pipeline --stages pairs,rm,ppo,eval --config configs/rlhf/goodhart-rep.yaml seed=$(SEED) $(ARGS) $(RESUME_ARG)

train-rlhf-sft: $(VENV)/.stamp-rlhf ## stage 1: tokenizer + tiny GPT-2 pre-trained on tiny-shakespeare (ARGS="model=gpt2" for a real one) (RESUME=1)
	$(PY) -m paperlab.rlhf.sft $(RLHF_CFG) $(RESUME_ARG)

pairs-rlhf: $(VENV)/.stamp-rlhf ## stage 2: base-model completion pairs labelled by the hidden gold scorer (Bradley-Terry draw)
	$(PY) -m paperlab.rlhf.preferences $(RLHF_CFG)

train-rlhf-rm: $(VENV)/.stamp-rlhf ## stage 3: proxy reward model with TRL RewardTrainer (RESUME=1)
	$(PY) -m paperlab.rlhf.reward $(RLHF_CFG) $(RESUME_ARG)

train-rlhf-ppo: $(VENV)/.stamp-rlhf ## stage 4: PPO with a KL penalty, written here (ARGS="kl_coef=0.05" ...) (RESUME=1)
	$(PY) -m paperlab.rlhf.ppo $(RLHF_CFG) $(RESUME_ARG)

train-rlhf-rloo: $(VENV)/.stamp-rlhf ## stage 5: TRL RLOOTrainer on the same proxy reward model (RESUME=1)
	$(PY) -m paperlab.rlhf.baselines rloo $(RLHF_CFG) $(RESUME_ARG)

train-rlhf-grpo: $(VENV)/.stamp-rlhf ## stage 5: TRL GRPOTrainer on the same proxy reward model (RESUME=1)
	$(PY) -m paperlab.rlhf.baselines grpo $(RLHF_CFG) $(RESUME_ARG)

train-rlhf-hh: $(VENV)/.stamp-rlhf ## reward model on Anthropic HH-RLHF harmless-base (needs the base model of train-rlhf-sft) (RESUME=1)
	$(PY) -m paperlab.rlhf.hh $(RLHF_CFG) $(RESUME_ARG)

eval-rlhf: $(VENV)/.stamp-rlhf ## over-optimisation curves (gold/proxy vs sqrt KL), best-of-n, base vs RLHF samples
	$(PY) -m paperlab.rlhf.evaluate $(RLHF_CFG)

bench-rlhf: $(VENV)/.stamp-rlhf ## steps/s and tokens/s of pre-training, PPO, RLOO, GRPO on this machine -> runs/rlhf/bench.json
	$(PY) -m paperlab.rlhf.bench $(RLHF_CFG) --out runs/rlhf/bench.json

report-rlhf: $(VENV)/.stamp-rlhf ## README/REPORT tables and figures from projects/rlhf/results (COLLECT=1 copies runs/rlhf/<preset> into results/<RLHF_AS> first)
	$(PY) -m paperlab.rlhf.report $(if $(COLLECT),--collect runs/rlhf/$(RLHF_PRESET) $(if $(RLHF_AS),--collect-as $(RLHF_AS),),) \
	  --results projects/rlhf/results --readme projects/rlhf/README.md projects/rlhf/REPORT.md $(RLHF_INDEX)
