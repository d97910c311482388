# LLM.int8 / quantization targets, included by the top-level Makefile (run them from the repository root).
.PHONY: train-quantization-base quantize outliers bench-attention bench-train-step bench-int8-gpu report-quantization

$(VENV)/.stamp-quantization: constraints.txt shared/pyproject.toml projects/quantization/pyproject.toml | $(PY)
	$(PIP) -e ./shared -e ./projects/quantization
	@touch $@

# QUANT_PRESET picks configs/quantization/<QUANT_PRESET>.yaml: shakespeare (offline default: trains the
# model here) or llama-local (a downloaded LlamaForCausalLM: ARGS="model_path=DIR").
QUANT_PRESET ?= shakespeare
QUANT_CFG     = --config configs/quantization/$(QUANT_PRESET).yaml seed=$(SEED) $(ARGS)

train-quantization-base: $(VENV)/.stamp-quantization ## pre-train the small Llama on tiny-shakespeare (SEED STEPS ARGS RESUME=1)
	$(PY) -m paperlab.quantization.train $(QUANT_CFG) $(STEPS_ARG) $(RESUME_ARG)

quantize: $(VENV)/.stamp-quantization ## every int8 method (ours, bitsandbytes, torchao, torch.ao) on one model: the main table (QUANT_PRESET ARGS)
	$(PY) -m paperlab.quantization.quantize $(QUANT_CFG)

outliers: $(VENV)/.stamp-quantization ## outlier-feature statistics per layer and the LLM.int8 threshold sweep (QUANT_PRESET ARGS)
	$(PY) -m paperlab.quantization.outliers $(QUANT_CFG)

bench-attention: $(VENV)/.stamp-quantization ## tiled online-softmax attention vs naive vs SDPA: error and peak memory vs length
	$(PY) -m paperlab.quantization.attention_bench --out runs/quantization/attention.json

bench-train-step: $(VENV)/.stamp-quantization ## seconds per pre-training step of both presets, fp32 vs bf16 autocast (what sized the large model)
	$(PY) -m paperlab.quantization.step_bench --configs configs/quantization/shakespeare.yaml \
	  configs/quantization/shakespeare-large.yaml --out runs/quantization/step_time.json

report-quantization: $(VENV)/.stamp-quantization ## README/REPORT tables and plots from projects/quantization/results (COLLECT=1 copies the runs first)
	$(PY) -m paperlab.quantization.report $(if $(COLLECT),--collect runs/quantization/$(QUANT_PRESET)-seed$(SEED) --preset $(QUANT_PRESET),) \
	  --results projects/quantization/results --readme projects/quantization/README.md projects/quantization/REPORT.md

bench-int8-gpu: $(VENV)/.stamp-quantization ## on a CUDA GPU: int8 vs fp16 matmul timings and attention memory (naive, tiled, SDPA)
	$(PY) -m paperlab.quantization.gpu_bench --out runs/quantization/gpu.json
