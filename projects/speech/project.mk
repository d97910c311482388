# Speech emotion recognition targets, included by the top-level Makefile (run them from the repository root).
.PHONY: train-speech eval-speech features-speech explore-speech grid-speech bench-speech report-speech ensemble-speech

$(VENV)/.stamp-speech: constraints.txt shared/pyproject.toml projects/speech/pyproject.toml | $(PY)
	$(PIP) -e ./shared -e ./projects/speech
	@touch $@

# SPEECH_DATA picks configs/speech/<SPEECH_DATA>.yaml: synthetic (generated, offline; the default), aesdd, ravdess.
# SPEECH_MODEL: cnn | crnn | svm. Extra overrides go in ARGS="key=value ...".
SPEECH_DATA  ?= synthetic
SPEECH_MODEL ?= cnn
SPEECH_RUN    = runs/speech/$(SPEECH_DATA)/$(SPEECH_MODEL)-seed$(SEED)
SPEECH_GROUPS  ?= models augment cross mels stronger speakernorm adapt
SPEECH_WORKERS ?= 1
SPEECH_INDEX  = $(if $(shell grep -s -l '<!-- headline:speech -->' README.md),--index README.md,)

train-speech: $(VENV)/.stamp-speech ## speaker-independent CV of one model (SPEECH_DATA=synthetic|aesdd|ravdess SPEECH_MODEL=cnn|crnn|svm SEED ARGS RESUME=1)
	$(PY) -m paperlab.speech.train --config configs/speech/$(SPEECH_DATA).yaml model=$(SPEECH_MODEL) seed=$(SEED) run_dir=$(SPEECH_RUN) $(ARGS) $(RESUME_ARG)

eval-speech: $(VENV)/.stamp-speech ## re-evaluate a finished run's fold models into its eval.json (RUN=runs/speech/aesdd/cnn-seed1)
	$(PY) -m paperlab.speech.evaluate $(or $(RUN),$(SPEECH_RUN)) $(ARGS)

features-speech: $(VENV)/.stamp-speech ## compute and cache the log-mels of a corpus (SPEECH_DATA=aesdd|ravdess ARGS="n_mels=32 ...")
	$(PY) -m paperlab.speech.features --config configs/speech/$(SPEECH_DATA).yaml $(ARGS)

explore-speech: $(VENV)/.stamp-speech ## exploratory analysis + misclassified examples of both corpora into projects/speech/results/explore
	$(PY) -m paperlab.speech.explore --out projects/speech/results/explore

grid-speech: $(VENV)/.stamp-speech ## every experiment of the README (SPEECH_GROUPS="models augment cross mels stronger" SPEECH_WORKERS=N; a GPU helps)
	$(PY) -m paperlab.speech.grid --groups $(SPEECH_GROUPS) --workers $(SPEECH_WORKERS)

bench-speech: $(VENV)/.stamp-speech ## CPU seconds per training epoch of each model on AESDD (one fold) and feature extraction ms per clip, into projects/speech/results/bench-cpu.json
	$(PY) -m paperlab.speech.bench --out projects/speech/results/bench-cpu.json

report-speech: $(VENV)/.stamp-speech ## README/REPORT tables and figures from the committed results (COLLECT=1 copies runs/speech/grid first)
	$(PY) -m paperlab.speech.report $(if $(COLLECT),--collect runs/speech/grid,) --results projects/speech/results \
	  --readme projects/speech/README.md projects/speech/REPORT.md $(SPEECH_INDEX)

ensemble-speech: $(VENV)/.stamp-speech ## no training: seed ensembles (mean softmax of a row's seeds) into runs/speech/grid/ensemble, test-time BatchNorm adaptation (adapt_bn) into runs/speech/grid/adabn
	$(PY) -m paperlab.speech.ensemble --grid runs/speech/grid
