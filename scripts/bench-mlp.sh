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
cargo build --release -p burnlab -q
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-2}"
./target/release/burnlab train mlp --config configs/mlp-cifar10.toml --data "$data" --run-dir "$run" "$@" > "$run.log"
# Inference timed as the peer times it: 3 extra passes over the test set, the median.
./target/release/burnlab eval "$run" --data "$data" --timed-passes 3 > "$run.eval.log" 2>&1
peer_line=""
if [ -n "${PEER_PYTHON:-}" ]; then
  peer_line=$(cd "$peers" && "$PEER_PYTHON" cifar_train.py "$data" --model mlp --infer-reps 3 | tail -1)
fi
python3 - "$run" "$peer_line" <<'PY'
import json, sys
run, peer = sys.argv[1], sys.argv[2]
m = json.load(open(f"{run}/metrics.json"))
timed = sorted(json.load(open(f"{run}/eval.json"))["timed_images_per_s"])
train, infer = m["train_images_per_s"], timed[len(timed) // 2]
print(f"task=bench_mlp epochs={m['epochs']} train_images={m['train_images']}")
print(f"train_img_per_s={train:.1f}")
print(f"sec_per_epoch={m['train_images'] / train:.2f}")
print(f"infer_img_per_s_bs256={infer:.1f}")
print("infer_img_per_s_passes=" + ",".join(f"{v:.0f}" for v in timed))
print(f"wall_s={m['train_seconds']:.1f}")
print(f"valid_acc={m['valid']['accuracy']:.4f}")
print(f"test_acc={m['test']['accuracy']:.4f}")
print(f"peak_rss_mib={m['peak_rss_mib']:.0f}")
if peer:
    p = dict(kv.split("=", 1) for kv in peer.split() if "=" in kv)
    print(f"peer_train_img_per_s={float(p['train_img_per_s']):.1f}")
    print(f"peer_infer_img_per_s_bs256={float(p['infer_img_per_s_bs256']):.1f}")
    print(f"peer_test_acc={float(p['test_acc']):.4f}")
    print(f"peer_peak_rss_mib={p['peak_rss_mib']}")
    print(f"ratio_train={train / float(p['train_img_per_s']):.3f}")
    print(f"ratio_infer={infer / float(p['infer_img_per_s_bs256']):.3f}")
    print(f"test_acc_minus_peer={m['test']['accuracy'] - float(p['test_acc']):+.4f}")
PY
