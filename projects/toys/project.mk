# Toy tasks in JAX, included by the top-level Makefile (run them from the repository root).
# Each target trains one task (one jitted lax.scan per chunk of steps, a checkpoint after each chunk),
# evaluates it and writes everything into runs/toys/<task>/seed<TOYS_SEED>/. Committed results change
# only through `make toys-publish`; `make toys-report` rewrites the README tables from projects/toys/results/.
.PHONY: toy-rand_transformer toy-cot toy-reverse_digits toy-flow_matching toy-diffusion toy-hdqn toy-optimizers toy-deep_dream toy-scaling_laws toy-bmg toy-ppo_verse toys-all toys-publish toys-report toys-ddpm-sweep

$(VENV)/.stamp-toys: constraints.txt shared/pyproject.toml projects/toys/pyproject.toml | $(PY)
	$(PIP) -e ./shared -e ./projects/toys
	@touch $@

# small models on a shared CPU: one XLA thread, low priority
TOYS_ENV := XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
TOYS_RUN = $(TOYS_ENV) nice -n 10 $(PY) -m paperlab.toys.$(1) --config configs/toys/$(1).yaml seed=$(or $(TOYS_SEED),0) $(ARGS) $(RESUME_ARG)

toy-rand_transformer: $(VENV)/.stamp-toys ## toys: transformer that writes random numbers in 0..100 (ARGS=key=value ..., RESUME=1)
	$(call TOYS_RUN,rand_transformer)

toy-cot: $(VENV)/.stamp-toys ## toys: chain of thought vs direct answer on "a number between 0 and a+b"
	$(call TOYS_RUN,cot)

toy-reverse_digits: $(VENV)/.stamp-toys ## toys: from-scratch decoder-only transformer reverses 8 digits
	$(call TOYS_RUN,reverse_digits)

toy-flow_matching: $(VENV)/.stamp-toys ## toys: flow matching on two moons (figures + GIF)
	$(call TOYS_RUN,flow_matching)

toy-diffusion: $(VENV)/.stamp-toys ## toys: DDPM on two moons, same network and steps as flow matching
	$(call TOYS_RUN,diffusion)

toy-hdqn: $(VENV)/.stamp-toys ## toys: h-DQN (tabular and networks) vs flat agents on Kulkarni et al.'s MDP (10 seeds)
	$(call TOYS_RUN,hdqn)

toy-optimizers: $(VENV)/.stamp-toys ## toys: SGD/Nesterov/Adam/AdamW by hand vs optax on an MNIST CNN (3 seeds; needs data/mnist)
	$(call TOYS_RUN,optimizers)

toy-deep_dream: $(VENV)/.stamp-toys ## toys: deep dream on an MNIST CNN (layers, channels, every class, regulariser ablation)
	$(call TOYS_RUN,deep_dream)

toy-scaling_laws: $(VENV)/.stamp-toys ## toys: validation loss vs CNN width and MNIST training-set size, power-law fits
	$(call TOYS_RUN,scaling_laws)

toy-bmg: $(VENV)/.stamp-toys ## toys: BMG vs meta-gradient vs fixed entropy weight, A2C on a two-colour grid (5 seeds)
	$(call TOYS_RUN,bmg)

toys-all: toy-rand_transformer toy-cot toy-reverse_digits toy-flow_matching toy-diffusion toy-hdqn toy-optimizers toy-deep_dream toy-scaling_laws toy-bmg toy-ppo_verse ## toys: every task into runs/toys/ (publish with toys-publish)

toys-publish: $(VENV)/.stamp-toys ## toys: copy a finished run into results/ (TASK=<task> RUN=runs/toys/<task>/seed0 [NAME=folder] [NO_GIF=1])
	$(PY) -m paperlab.toys.publish $(RUN) --task $(TASK) $(if $(NAME),--name $(NAME),) $(if $(NO_GIF),--no-gif,)

toys-report: $(VENV)/.stamp-toys ## toys: README tables from the committed projects/toys/results/ only
	$(PY) -m paperlab.toys.report --results projects/toys/results --readme projects/toys/README.md

toys-ddpm-sweep: $(VENV)/.stamp-toys ## toys: DDPM steps/schedule/T sweep on two moons -> runs/toys/diffusion_sweep.json
	$(TOYS_ENV) nice -n 10 $(PY) -m paperlab.toys.ddpm_sweep --out runs/toys/diffusion_sweep.json

toy-ppo_verse: $(VENV)/.stamp-toys ## toys: MLE then PPO that writes rhymed pairs of lines from the sonnets, with and without the repetition penalty (needs data/shakespeare-sonnets)
	$(call TOYS_RUN,ppo_verse)
