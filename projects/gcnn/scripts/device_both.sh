#!/usr/bin/env bash
# Both GPU grids at once (EuroSAT and rotated MNIST sharing the GPU), for a short device lease:
#   OUT=... bash projects/gcnn/scripts/device_both.sh TOTAL_SECONDS ES_EPOCHS MN_EPOCHS
# Data: $CARRY/eurosat/eurosat-jpeg.npz and $CARRY/mnist/*.gz (default .gcnn-carry/both).
set -u
total=$1; es_epochs=$2; mn_epochs=$3
PYTHON=${PYTHON:-python3}
OUT=${OUT:-runs/gcnn/device}; mkdir -p "$OUT"
CARRY=${CARRY:-.gcnn-carry/both}
if ! $PYTHON -c "import omegaconf, e2cnn" 2>/dev/null; then
  $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD/shared/src:$PWD/projects/gcnn/src PYTHONUNBUFFERED=1
t0=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || true
$PYTHON -m paperlab.gcnn.prepare eurosat-pixels "$CARRY/eurosat" /tmp/gd-es &
$PYTHON -m paperlab.gcnn.prepare mnist-rot "$CARRY/mnist" /tmp/gd-mn --seed 0 &
wait
left=$(( total - ($(date +%s) - t0) - 15 ))
echo "prepared in $(( $(date +%s) - t0 ))s; grids get ${left}s"
$PYTHON -m paperlab.gcnn.grid eurosat --data-dir /tmp/gd-es --work /tmp/gw --out "$OUT/grid-eurosat.jsonl" \
  --workers "${ES_WORKERS:-7}" --start-deadline-s $(( left * 6 / 10 )) --deadline-s "$left" --epochs "$es_epochs" \
  > "$OUT/log-eurosat.txt" 2>&1 &
$PYTHON -m paperlab.gcnn.grid mnist_rot --data-dir /tmp/gd-mn --work /tmp/gw --out "$OUT/grid-mnist_rot.jsonl" \
  --workers "${MN_WORKERS:-7}" --start-deadline-s $(( left * 6 / 10 )) --deadline-s "$left" --epochs "$mn_epochs" \
  > "$OUT/log-mnist_rot.txt" 2>&1 &
wait
echo "done in $(( $(date +%s) - t0 ))s"
grep -h "grid \|rc=[^0]" "$OUT"/log-*.txt
