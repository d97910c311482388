# DQN targets, included by the top-level Makefile (run them from the repository root).
.PHONY: train-dqn train-dqn-minatar train-dqn-batched eval-dqn gif-dqn bench-dqn bench-dqn-profile publish-dqn-batched report-dqn

$(VENV)/.stamp-dqn: constraints.txt shared/pyproject.toml projects/dqn/pyproject.toml | $(PY)
	$(PIP) -e ./shared -e ./projects/dqn
	@touch $@

DQN_RUNS := runs/dqn

train-dqn: $(VENV)/.stamp-dqn ## DQN on CartPole-v1 (AGENT=dqn|mdqn SEED=1; RESUME=1 continues a killed run)
	$(PY) -m paperlab.dqn.train --config configs/dqn/cartpole.yaml agent=$(AGENT) seed=$(SEED) \
	  run_dir=$(DQN_RUNS)/cartpole/$(AGENT)-seed$(SEED) $(STEPS_ARG) $(ARGS) $(RESUME_ARG)

train-dqn-minatar: $(VENV)/.stamp-dqn ## DQN on MinAtar (GAME=Breakout|Asterix|Freeway|Seaquest|SpaceInvaders AGENT SEED STEPS)
	$(PY) -m paperlab.dqn.train --config configs/dqn/minatar.yaml env_id=MinAtar/$(GAME)-v0 agent=$(AGENT) \
	  seed=$(SEED) run_dir=$(DQN_RUNS)/minatar/$(GAME)/$(AGENT)-seed$(SEED) $(STEPS_ARG) $(ARGS) $(RESUME_ARG)

train-dqn-batched: $(VENV)/.stamp-dqn ## SEEDS agents (seeds SEED..SEED+SEEDS-1) in one process (GAME AGENT SEEDS=5 STEPS)
	$(PY) -m paperlab.dqn.train_batched --config configs/dqn/minatar-batched.yaml env_id=MinAtar/$(GAME)-v0 \
	  agent=$(AGENT) seed=$(SEED) num_seeds=$(or $(SEEDS),5) run_dir=$(DQN_RUNS)/batched/$(GAME)/$(AGENT) \
	  $(STEPS_ARG) $(ARGS) $(RESUME_ARG)

DQN_RUN = $(or $(RUN),$(DQN_RUNS)/cartpole/$(AGENT)-seed$(SEED))
eval-dqn: $(VENV)/.stamp-dqn ## evaluate a run's model (RUN=runs/dqn/... EPISODES=100; EPSILON defaults to the run's eval_epsilon, 0.0)
	$(PY) -m paperlab.dqn.evaluate $(DQN_RUN)/model.pt --episodes $(or $(EPISODES),100) \
	  $(if $(EPSILON),--epsilon $(EPSILON),) --out $(DQN_RUN)/evaluate.json

gif-dqn: $(VENV)/.stamp-dqn ## GIF of a run's model (RUN=runs/dqn/... OUT=agent.gif ARGS=--frames=200)
	$(PY) -m paperlab.dqn.render $(DQN_RUN)/model.pt --out $(or $(OUT),$(DQN_RUN)/agent.gif) $(ARGS)

bench-dqn: $(VENV)/.stamp-dqn ## frames/s of 1, 4, 8 seeds per process vs the solo trainer, FLOPs, share of matmul peak
	$(PY) -m paperlab.dqn.bench_seeds --config configs/dqn/minatar.yaml --seeds 1 4 8 --frames 3000 \
	  --out projects/dqn/results/bench/seeds.json $(ARGS)

bench-dqn-profile: $(VENV)/.stamp-dqn ## solo trainer frames/s on MinAtar Breakout + where the time goes (profile)
	$(PY) -m paperlab.dqn.bench --config configs/dqn/minatar.yaml --frames 30000 \
	  --out projects/dqn/results/bench/breakout.json $(ARGS)

publish-dqn-batched: $(VENV)/.stamp-dqn ## copy the finished batched runs' small files (runs/dqn/batched) into results/batched
	$(PY) -m paperlab.dqn.report --collect $(DQN_RUNS)/batched --collect-into projects/dqn/results/batched --results projects/dqn/results

report-dqn: $(VENV)/.stamp-dqn ## tables and plots in projects/dqn from the committed results
	$(PY) -m paperlab.dqn.report --results projects/dqn/results --readme projects/dqn/README.md projects/dqn/REPORT.md \
	  --index README.md
