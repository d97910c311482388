# Agent targets, included by the top-level Makefile (run them from the repository root).
# An agent has no training step: `make eval-agent` is the run (resumable with RESUME=1).
.PHONY: agent eval-agent report-agent data-agent

$(VENV)/.stamp-agent: constraints.txt shared/pyproject.toml projects/agent/pyproject.toml | $(PY)
	$(PIP) -e ./shared -e ./projects/agent
	@touch $@

# AGENT_PRESET picks configs/agent/<AGENT_PRESET>.yaml: scripted (offline harness), openai (any OpenAI-compatible
# endpoint: OPENAI_BASE_URL, OPENAI_MODEL, OPENAI_API_KEY), hf (a local model directory: ARGS=model_dir=PATH).
AGENT_PRESET ?= scripted
AGENT_RUN     = runs/agent/eval/$(AGENT_PRESET)
TASK         ?=
AGENT_INDEX   = $(if $(shell grep -s -l '<!-- headline:agent -->' README.md),--index README.md,)

agent: $(VENV)/.stamp-agent ## one task with a real model (TASK="..." AGENT_PRESET=openai|hf ARGS="model=... base_url=...")
	$(PY) -m paperlab.agent.run --config configs/agent/$(if $(filter scripted,$(AGENT_PRESET)),openai,$(AGENT_PRESET)).yaml \
	  task="$(TASK)" $(ARGS)

eval-agent: $(VENV)/.stamp-agent ## the task suite with/without reflection (AGENT_PRESET=scripted|openai|hf ARGS RESUME=1)
	$(PY) -m paperlab.agent.evaluate --config configs/agent/$(AGENT_PRESET).yaml run_dir=$(AGENT_RUN) seed=$(SEED) \
	  $(ARGS) $(RESUME_ARG)

data-agent: $(VENV)/.stamp-agent ## rebuild the bundled SQLite database of the task suite from build_data.py
	$(PY) -m paperlab.agent.build_data

report-agent: $(VENV)/.stamp-agent ## README/REPORT tables from projects/agent/results (COLLECT=1 copies runs/agent/eval first)
	$(PY) -m paperlab.agent.report $(if $(COLLECT),--collect runs/agent/eval,) --results projects/agent/results \
	  --readme projects/agent/README.md projects/agent/REPORT.md $(AGENT_INDEX)
