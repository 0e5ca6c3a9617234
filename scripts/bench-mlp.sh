#!/usr/bin/env bash
# MLP benchmark: the recipe of ../shared/peers/torch/cifar_train.py --model mlp (5 epochs,
# 3072-512-256-10, ReLU, dropout 0.5, SGD Nesterov 0.9, lr 0.02 cosine, wd 5e-4, batch 128,
# crop+flip, per-channel standardisation), 2 threads. Prints key=value lines.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${BURNLAB_DATA:-../shared/datasets/cifar10-jpg}"
run="${BENCH_RUN_DIR:-$(mktemp -d)/bench-mlp}"
cargo build --release -p burnlab -q
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-2}"
./target/release/burnlab train mlp --config configs/mlp-cifar10.toml --data "$data" --run-dir "$run" "$@" > "$run.log"
python3 - "$run" <<'PY'
import json, sys
run = sys.argv[1]
m = json.load(open(f"{run}/metrics.json"))
print(f"task=bench_mlp epochs={m['epochs']} train_images={m['train_images']}")
print(f"train_img_per_s={m['train_images_per_s']:.1f}")
print(f"sec_per_epoch={m['train_images'] / m['train_images_per_s']:.2f}")
print(f"wall_s={m['train_seconds']:.1f}")
print(f"valid_acc={m['valid']['accuracy']:.4f}")
print(f"test_acc={m['test']['accuracy']:.4f}")
print(f"peak_rss_mib={m['peak_rss_mib']:.0f}")
PY
