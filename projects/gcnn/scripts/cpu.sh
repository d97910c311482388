#!/usr/bin/env bash
# The CPU-scale rotated-MNIST comparison of the README (every model once, one core, ~14 minutes):
#   bash projects/gcnn/scripts/cpu.sh
# needs runs/gcnn/data/mnist-rot-seed0.npz (make prepare-gcnn). Then:
#   make report-gcnn ARGS=... / python -m paperlab.gcnn.report (reads results/cpu/grid.jsonl)
set -u
PY=${PY:-.venv/bin/python}
uptime
$PY -m paperlab.gcnn.grid mnist_rot_cpu --data-dir runs/gcnn/data --work runs/gcnn/cpu --out runs/gcnn/cpu/grid.jsonl \
  --workers 1 --start-deadline-s "${START_DEADLINE:-660}" --deadline-s "${DEADLINE:-800}" --epochs 3
uptime
