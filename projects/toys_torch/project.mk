# Toy tasks 7, 8 and 13 in PyTorch + Hugging Face, included by the top-level Makefile (run from the repository root).
# Each target writes runs/toys_torch/<task>/seed<SEED>/ (config.yaml, metrics.jsonl, checkpoints, models,
# eval.json, summary.json). Committed results change only through `make publish-toys_torch TASK=<task>`;
# `make report-toys_torch` rewrites the README/REPORT tables from projects/toys_torch/results/.
.PHONY: toy-beam_search toy-sonnet_sft toy-red_team publish-toys_torch report-toys_torch

$(VENV)/.stamp-toys_torch: constraints.txt shared/pyproject.toml projects/toys_torch/pyproject.toml | $(PY)
	$(PIP) -e ./shared -e ./projects/toys_torch
	@touch $@

# small models on a shared CPU: one torch thread (ARGS=threads=0 uses torch's default), low priority
TOYS_TORCH_RUN = TRANSFORMERS_VERBOSITY=error nice -n 10 $(PY) -m paperlab.toys_torch.$(1) \
	--config configs/toys_torch/$(1).yaml seed=$(SEED) $(ARGS) $(RESUME_ARG)

toy-sonnet_sft: $(VENV)/.stamp-toys_torch ## toys_torch: Llama pre-trained on the plays, SFT on the sonnets (full vs LoRA), poem metrics (ARGS, RESUME=1)
	$(call TOYS_TORCH_RUN,sonnet_sft)

toy-beam_search: $(VENV)/.stamp-toys_torch ## toys_torch: beam search written out vs transformers; n-best, width 1..20 (uses toy-sonnet_sft's base model if run)
	$(call TOYS_TORCH_RUN,beam_search)

toy-red_team: $(VENV)/.stamp-toys_torch ## toys_torch: red-team a GPT-2 trained on HH-RLHF dialogue (offensive content); toxicity, bias probes
	$(call TOYS_TORCH_RUN,red_team)

publish-toys_torch: $(VENV)/.stamp-toys_torch ## toys_torch: copy a finished run's small files into results/ (TASK=<task> [RUN=runs/toys_torch/<task>/seed1])
	$(PY) -m paperlab.toys_torch.publish $(or $(RUN),runs/toys_torch/$(TASK)/seed$(SEED)) --task $(TASK)

report-toys_torch: $(VENV)/.stamp-toys_torch ## toys_torch: README/REPORT tables from the committed projects/toys_torch/results/ only
	$(PY) -m paperlab.toys_torch.report --results projects/toys_torch/results \
	  --readme projects/toys_torch/README.md projects/toys_torch/REPORT.md
