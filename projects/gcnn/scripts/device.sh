#!/usr/bin/env bash
# The GPU grids of the README, exactly as run on one NVIDIA H200 (the project's "device" machine):
#
#   bash projects/gcnn/scripts/device.sh eurosat   GRID_SECONDS [EPOCHS]
#   bash projects/gcnn/scripts/device.sh mnist_rot GRID_SECONDS [EPOCHS]
#
# Inputs, carried next to the working tree (git-ignored): .gcnn-carry/eurosat/eurosat-jpeg.npz
# (python -m paperlab.gcnn.prepare eurosat-jpeg data/eurosat .gcnn-carry/eurosat --quality 85),
# .gcnn-carry/mnist/*.gz (the four MNIST IDX files), and .whl/ (omegaconf, e2cnn wheels, for a machine
# whose python lacks them; skipped when they import). Results: $OUT (default runs/gcnn/device):
# bench-<grid>.json, grid-<grid>.jsonl (the log goes to stdout).
set -u
what=$1
seconds=$2
epochs=${3:-}
PYTHON=${PYTHON:-python3}
OUT=${OUT:-runs/gcnn/device}
mkdir -p "$OUT"
if ! $PYTHON -c "import omegaconf, e2cnn" 2>/dev/null; then
  $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD/shared/src:$PWD/projects/gcnn/src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || true
data=/tmp/gcnn-data
carry=${CARRY:-.gcnn-carry}  # holds eurosat/eurosat-jpeg.npz and mnist/*.gz
case $what in
  eurosat)
    $PYTHON -m paperlab.gcnn.prepare eurosat-pixels $carry/eurosat $data || exit 1
    $PYTHON -m paperlab.gcnn.bench --out "$OUT/bench-eurosat.json" --steps ${BENCH_STEPS:-20} --warmup ${BENCH_WARMUP:-5} || true ;;
  mnist_rot)
    $PYTHON -m paperlab.gcnn.prepare mnist-rot $carry/mnist $data --seed 0 || exit 1
    [ -n "${BENCH_MNIST:-}" ] && $PYTHON -m paperlab.gcnn.bench --out "$OUT/bench-mnist_rot.json" --size 28 --channels 1 \
      --pool-after 1,3 --steps ${BENCH_STEPS:-20} --warmup ${BENCH_WARMUP:-5} ;;
  *) echo "unknown grid $what (eurosat | mnist_rot)"; exit 2 ;;
esac
start=$((seconds * 70 / 100))
$PYTHON -m paperlab.gcnn.grid "$what" --data-dir $data --work /tmp/gcnn-work --out "$OUT/grid-$what.jsonl" \
  --workers "${WORKERS:-12}" --start-deadline-s "$start" --deadline-s "$seconds" ${epochs:+--epochs $epochs} \
  ${TINY:+--tiny} 2>&1
