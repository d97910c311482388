# paperlab: every job is a make target. The first target you type creates .venv and installs what
# it needs (pinned by constraints.txt); later targets reuse it.
#   make test              the test suite (installs the whole workspace on first use)
#   make train-dqn         DQN on CartPole-v1 (installs only shared + dqn)
# Variables: PYTHON (interpreter for the venv), SEED, AGENT, GAME, STEPS, ARGS (extra overrides).

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
# PIP_CONSTRAINT also pins the build backends of the editable installs
PIP    := PIP_CONSTRAINT=$(CURDIR)/constraints.txt $(BIN)/pip install --disable-pip-version-check -q \
          -c constraints.txt
export MUJOCO_GL ?= egl
export HF_HUB_OFFLINE ?= 1

SEED  ?= 1
AGENT ?= dqn
GAME  ?= Breakout
STEPS ?=
ARGS  ?=
STEPS_ARG := $(if $(STEPS),total_steps=$(STEPS),)

.PHONY: help setup test test-slow lint format clean \
        train-dqn train-dqn-minatar eval-dqn gif-dqn bench-dqn report-dqn

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

$(PY):
	$(PYTHON) -m venv $(VENV)

# ---------------------------------------------------------------- installs (stamp files)
$(VENV)/.stamp-all: constraints.txt workspace.txt shared/pyproject.toml projects/*/pyproject.toml | $(PY)
	$(PIP) -r workspace.txt
	@touch $@

$(VENV)/.stamp-dqn: constraints.txt shared/pyproject.toml projects/dqn/pyproject.toml | $(PY)
	$(PIP) -e ./shared -e ./projects/dqn
	@touch $@

setup: $(VENV)/.stamp-all ## install the whole workspace into .venv

# ---------------------------------------------------------------- checks
test: $(VENV)/.stamp-all ## run the fast test suite
	$(PY) -m pytest -q

test-slow: $(VENV)/.stamp-all ## run only the slow tests
	$(PY) -m pytest -q -m slow

lint: $(VENV)/.stamp-all ## ruff
	$(BIN)/ruff check .

format: $(VENV)/.stamp-all ## ruff fix + format
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

# ---------------------------------------------------------------- DQN
DQN_RUNS := runs/dqn

train-dqn: $(VENV)/.stamp-dqn ## DQN on CartPole-v1 (AGENT=dqn|mdqn SEED=1)
	$(PY) -m paperlab.dqn.train --config configs/dqn/cartpole.yaml agent=$(AGENT) seed=$(SEED) \
	  run_dir=$(DQN_RUNS)/cartpole/$(AGENT)-seed$(SEED) $(STEPS_ARG) $(ARGS)

train-dqn-minatar: $(VENV)/.stamp-dqn ## DQN on MinAtar (GAME=Breakout|Asterix|Freeway|Seaquest|SpaceInvaders AGENT SEED STEPS)
	$(PY) -m paperlab.dqn.train --config configs/dqn/minatar.yaml env_id=MinAtar/$(GAME)-v0 agent=$(AGENT) \
	  seed=$(SEED) run_dir=$(DQN_RUNS)/minatar/$(GAME)/$(AGENT)-seed$(SEED) $(STEPS_ARG) $(ARGS)

RUN ?= $(DQN_RUNS)/cartpole/$(AGENT)-seed$(SEED)
eval-dqn: $(VENV)/.stamp-dqn ## evaluate a run's model (RUN=runs/dqn/... EPISODES=100 EPSILON=0.01)
	$(PY) -m paperlab.dqn.evaluate $(RUN)/model.pt --episodes $(or $(EPISODES),100) \
	  $(if $(EPSILON),--epsilon $(EPSILON),) --out $(RUN)/evaluate.json

gif-dqn: $(VENV)/.stamp-dqn ## GIF of a run's model (RUN=runs/dqn/... OUT=agent.gif)
	$(PY) -m paperlab.dqn.render $(RUN)/model.pt --out $(or $(OUT),$(RUN)/agent.gif)

bench-dqn: $(VENV)/.stamp-dqn ## training frames/s on MinAtar Breakout (paper hyperparameters) + profile
	$(PY) -m paperlab.dqn.bench --config configs/dqn/minatar.yaml --frames 30000 \
	  --out projects/dqn/results/bench/breakout.json $(ARGS)

report-dqn: $(VENV)/.stamp-dqn ## tables and plots in projects/dqn from the committed results
	$(PY) -m paperlab.dqn.report --results projects/dqn/results --readme projects/dqn/README.md projects/dqn/REPORT.md \
	  --index README.md

clean: ## remove .venv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache
