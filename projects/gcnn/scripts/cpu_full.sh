#!/usr/bin/env bash
# The complete CPU-scale rotated-MNIST grid of the README (all 12,000 training digits, all 50,000 test
# digits, base width 8, 3 epochs, one thread per run), in chunks that each fit a 30-minute job slot:
#   bash projects/gcnn/scripts/cpu_full.sh '(so2|c16|c8|c4|cnn)-seed1'   # a regex over the job names
# needs runs/gcnn/data/mnist-rot-seed0.npz (make prepare-gcnn). The job names and their settings are in
# paperlab.gcnn.grid.plan("mnist_rot_cpu_full"); the same grid in one go (hours on one core):
#   make grid-gcnn GRID=mnist_rot_cpu_full ARGS="--workers 1 --epochs 3"
# Publish: cp runs/gcnn/cpu_full/grid.jsonl projects/gcnn/results/cpu_full/grid.jsonl && make report-gcnn
set -u
PY=${PY:-.venv/bin/python}
uptime
$PY -m paperlab.gcnn.grid mnist_rot_cpu_full --data-dir runs/gcnn/data --work runs/gcnn/cpu_full \
  --out runs/gcnn/cpu_full/grid.jsonl --workers 1 --epochs 3 --deadline-s "${DEADLINE:-1560}" --only "${1:-.*}"
uptime
