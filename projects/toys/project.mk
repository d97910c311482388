# Toy tasks in JAX, included by the top-level Makefile (run them from the repository root).
# Each target trains one task (one jitted function), evaluates it and writes its figures and
# metrics.json into projects/toys/results/<task>/; `make toys-report` rewrites the README tables.
.PHONY: toy-rand_transformer toy-cot toy-reverse_digits toy-flow_matching toy-diffusion toy-hdqn toys-all toys-report

$(VENV)/.stamp-toys: constraints.txt shared/pyproject.toml projects/toys/pyproject.toml | $(PY)
	$(PIP) -e ./shared -e ./projects/toys
	@touch $@

# small models on a shared CPU: one XLA thread, low priority
TOYS_ENV := XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
TOYS_RUN = $(TOYS_ENV) nice -n 10 $(PY) -m paperlab.toys.$(1) --config configs/toys/$(1).yaml seed=$(or $(TOYS_SEED),0) $(ARGS)

toy-rand_transformer: $(VENV)/.stamp-toys ## toys: transformer that writes random numbers in 0..100 (ARGS=key=value ...)
	$(call TOYS_RUN,rand_transformer)

toy-cot: $(VENV)/.stamp-toys ## toys: chain of thought vs direct answer on "a number between 0 and a+b"
	$(call TOYS_RUN,cot)

toy-reverse_digits: $(VENV)/.stamp-toys ## toys: from-scratch decoder-only transformer reverses 8 digits
	$(call TOYS_RUN,reverse_digits)

toy-flow_matching: $(VENV)/.stamp-toys ## toys: flow matching on two moons (figures + GIF)
	$(call TOYS_RUN,flow_matching)

toy-diffusion: $(VENV)/.stamp-toys ## toys: DDPM on two moons, same network and steps as flow matching
	$(call TOYS_RUN,diffusion)

toy-hdqn: $(VENV)/.stamp-toys ## toys: h-DQN vs Q-learning on Kulkarni et al.'s stochastic MDP (10 seeds)
	$(call TOYS_RUN,hdqn)

toys-all: toy-rand_transformer toy-cot toy-reverse_digits toy-flow_matching toy-diffusion toy-hdqn ## toys: every task, then the report
	$(MAKE) toys-report

toys-report: $(VENV)/.stamp-toys ## toys: README tables from the committed projects/toys/results/*/metrics.json
	$(PY) -m paperlab.toys.report --results projects/toys/results --readme projects/toys/README.md
