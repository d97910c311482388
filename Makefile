# paperlab: every job is a make target. The first target you type creates .venv and installs what
# it needs (pinned by constraints.txt); later targets reuse it.
#   make test              the test suite (installs the whole workspace on first use)
#   make train-dqn         DQN on CartPole-v1 (installs only shared + dqn)
# Variables: PYTHON (interpreter for the venv), SEED, AGENT, GAME, STEPS, ARGS (extra overrides),
# RESUME=1 (continue the run in the same run directory from its checkpoints/last.pt).

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
RESUME ?=
RESUME_ARG := $(if $(RESUME),--resume,)

.PHONY: help setup test test-slow lint format clean

help: ## this list. Resume a killed run with the same command plus RESUME=1 (or ARGS="--resume")
	@grep -h -E '^[a-zA-Z][a-zA-Z0-9_-]*:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

$(PY):
	$(PYTHON) -m venv $(VENV)

# ---------------------------------------------------------------- installs (stamp files)
$(VENV)/.stamp-all: constraints.txt workspace.txt shared/pyproject.toml projects/*/pyproject.toml | $(PY)
	$(PIP) -r workspace.txt
	@touch $@

setup: $(VENV)/.stamp-all ## install the whole workspace into .venv

# ---------------------------------------------------------------- checks
test: $(VENV)/.stamp-all ## run the fast test suite
	$(PY) -m pytest -q

test-slow: $(VENV)/.stamp-all ## run only the slow tests
	$(PY) -m pytest -q -m slow

lint: $(VENV)/.stamp-all ## ruff check + ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.stamp-all ## ruff fix + format
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

# ---------------------------------------------------------------- projects
# Each project keeps its own targets (and its install stamp) in projects/<name>/project.mk.
include $(sort $(wildcard projects/*/project.mk))

clean: ## remove .venv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache
