# PPO / PPO-EWMA targets, included by the top-level Makefile (run them from the repository root).
.PHONY: train-ppo train-ppo-brax train-brax-ppo eval-ppo gif-ppo bench-ppo sweep-ppo-ewma report-ppo publish-ppo

$(VENV)/.stamp-ppo: constraints.txt shared/pyproject.toml projects/ppo/pyproject.toml | $(PY)
	$(PIP) -e ./shared -e ./projects/ppo
	@touch $@

PPO_RUNS := runs/ppo
PPO_ALGO = $(or $(ALGO),ppo)
ENV ?= ant

train-ppo: $(VENV)/.stamp-ppo ## PPO on MuJoCo InvertedPendulum-v5 until eval return 1000 (ALGO=ppo|ppo-ewma SEED=1 RESUME=1)
	$(PY) -m paperlab.ppo.train --config configs/ppo/inverted_pendulum.yaml algo=$(PPO_ALGO) seed=$(SEED) \
	  run_dir=$(PPO_RUNS)/InvertedPendulum-v5/$(PPO_ALGO)-seed$(SEED) $(STEPS_ARG) $(ARGS) $(RESUME_ARG)

train-ppo-brax: $(VENV)/.stamp-ppo ## our torch PPO on a Brax env (ENV=ant|humanoid ALGO SEED STEPS RESUME=1)
	$(PY) -m paperlab.ppo.train --config configs/ppo/brax_$(ENV).yaml algo=$(PPO_ALGO) seed=$(SEED) \
	  run_dir=$(PPO_RUNS)/brax/$(ENV)/$(PPO_ALGO)-seed$(SEED) $(STEPS_ARG) $(ARGS) $(RESUME_ARG)

train-brax-ppo: $(VENV)/.stamp-ppo ## Brax's own JAX PPO from the same preset (ENV=ant|humanoid SEED STEPS; RESUME=1 is refused)
	$(PY) -m paperlab.ppo.brax_ppo --config configs/ppo/brax_$(ENV).yaml seed=$(SEED) \
	  run_dir=$(PPO_RUNS)/brax/$(ENV)/brax-ppo-seed$(SEED) $(STEPS_ARG) $(ARGS) $(RESUME_ARG)

PPO_RUN = $(or $(RUN),$(PPO_RUNS)/InvertedPendulum-v5/$(PPO_ALGO)-seed$(SEED))
eval-ppo: $(VENV)/.stamp-ppo ## evaluate a run's deterministic policy (RUN=runs/ppo/... EPISODES=10)
	$(PY) -m paperlab.ppo.evaluate $(PPO_RUN)/model.pt --episodes $(or $(EPISODES),10) --out $(PPO_RUN)/evaluate.json

gif-ppo: $(VENV)/.stamp-ppo ## GIF of a run's policy, torso-tracking camera for Ant/Humanoid (RUN=runs/ppo/... OUT=agent.gif)
	$(PY) -m paperlab.ppo.render $(PPO_RUN)/model.pt --out $(or $(OUT),$(PPO_RUN)/agent.gif) $(ARGS)

bench-ppo: $(VENV)/.stamp-ppo ## training steps/s on InvertedPendulum and Brax Ant, time breakdown, load (writes results/bench)
	$(PY) -m paperlab.ppo.bench --out projects/ppo/results/bench $(ARGS)

sweep-ppo-ewma: $(VENV)/.stamp-ppo ## PPO vs PPO-EWMA at two batch sizes (SEEDS="1 2 3")
	$(PY) -m paperlab.ppo.sweep --config configs/ppo/ewma_sweep.yaml --seeds $(or $(SEEDS),1 2 3) --num-envs 8 2 \
	  --out $(PPO_RUNS)/ewma_sweep $(ARGS)

publish-ppo: $(VENV)/.stamp-ppo ## copy a run's small files and model.pt into projects/ppo/results/DEST (RUN=runs/ppo/... DEST=ip/ppo-seed6)
	$(PY) -m paperlab.ppo.publish $(PPO_RUN) projects/ppo/results/$(DEST) $(ARGS)

report-ppo: $(VENV)/.stamp-ppo ## tables and plots in projects/ppo from the committed results
	$(PY) -m paperlab.ppo.report --results projects/ppo/results --readme projects/ppo/README.md projects/ppo/REPORT.md --index README.md
