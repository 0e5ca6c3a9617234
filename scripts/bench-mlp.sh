#!/usr/bin/env bash
# MLP benchmark: the recipe of ../shared/peers/torch/cifar_train.py --model mlp (5 epochs,
# 3072-512-256-10, ReLU, dropout 0.5, SGD Nesterov 0.9, lr 0.02 cosine, wd 5e-4, batch 128,
# crop+flip, per-channel standardisation), 2 threads. With PEER_PYTHON set (a Python with
# torch), the peer runs right after it in the same session and the ratios are printed.
# Prints key=value lines.
set -euo pipefail
cd "$(dirname "$0")/.."
data="$(realpath "${BURNLAB_DATA:-../shared/datasets/cifar10-jpg}")"
run="${BENCH_RUN_DIR:-$(mktemp -d)/bench-mlp}"
peers="${PEER_DIR:-../shared/peers/torch}"
bash scripts/bench-build.sh
. scripts/isa.sh
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-2}"
./target/release/burnlab train mlp --config configs/mlp-cifar10.toml --data "$data" --run-dir "$run" "$@" > "$run.log"
# Inference timed as the peer times it: 3 extra passes over the test set, the median.
./target/release/burnlab eval "$run" --data "$data" --timed-passes 3 > "$run.eval.log" 2>&1
peer_line=""
if [ -n "${PEER_PYTHON:-}" ]; then
  peer_line=$(cd "$peers" && "$PEER_PYTHON" cifar_train.py "$data" --model mlp --infer-reps 3 | tail -1)
fi
python3 scripts/bench_report.py bench_mlp "$run" "$peer_line"
