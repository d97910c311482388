#!/usr/bin/env bash
# The CPU-scale EuroSAT grid of the README (32x32 mean-pooled images, base width 8, the preset
# configs/gcnn/eurosat_cpu.yaml, one thread per run), in chunks that each fit a 30-minute job slot:
#   bash projects/gcnn/scripts/eurosat_cpu.sh '(so2|d4|c4|cnn)-seed1'    # a regex over the job names
# needs runs/gcnn/data/eurosat-pixels.npz (make prepare-gcnn). The job names and their settings are in
# paperlab.gcnn.grid.plan("eurosat_cpu"); the same grid in one go (hours on one core):
#   make grid-gcnn GRID=eurosat_cpu ARGS="--workers 1"
# Each chunk appends its log (with uptime before and after) to runs/gcnn/eurosat_cpu/log.txt.
# Publish: cp runs/gcnn/eurosat_cpu/{grid.jsonl,log.txt} projects/gcnn/results/eurosat_cpu/ && make report-gcnn
set -u
PY=${PY:-.venv/bin/python}
OUT=runs/gcnn/eurosat_cpu
mkdir -p "$OUT"
{
  echo "== ${1:-.*}"
  uptime
  $PY -m paperlab.gcnn.grid eurosat_cpu --data-dir runs/gcnn/data --work "$OUT" --out "$OUT/grid.jsonl" \
    --workers 1 --deadline-s "${DEADLINE:-1560}" --only "${1:-.*}"
  uptime
} 2>&1 | tee -a "$OUT/log.txt"
