#!/usr/bin/env bash
# CNN benchmark: `bench-cnn.sh [MODEL...] [-- TRAIN ARGS]`, models lenet5 (5 epochs), resnet20
# (1 epoch), resnet9 (its 24-epoch config; a GPU job). The recipe is the PyTorch peer's
# (../shared/peers/torch/cifar_train.py): SGD Nesterov 0.9, wd 5e-4, cosine, batch 128, crop+flip,
# standardisation; 2 CPU threads. With PEER_PYTHON set (a Python with torch), the peer runs right
# after each model in the same session and the ratios are printed. Prints key=value lines.
set -euo pipefail
cd "$(dirname "$0")/.."
data="$(realpath "${BURNLAB_DATA:-../shared/datasets/cifar10-jpg}")"
out="${BENCH_RUN_DIR:-$(mktemp -d)}"
mkdir -p "$out"
peers="${PEER_DIR:-../shared/peers/torch}"
models=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do models+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#models[@]} -eq 0 ] && models=(lenet5 resnet20)
cargo build --release -p burnlab -q
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-2}"
for model in "${models[@]}"; do
  run="$out/bench-$model"
  # The peer's budgets (no warm-up): 5 epochs of LeNet-5, 1 of ResNet-20; ResNet-9 its own 24.
  case "$model" in lenet5) epochs=(--epochs 5) ;; resnet9) epochs=() ;; *) epochs=(--epochs 1 --set schedule.warmup_epochs=0) ;; esac
  ./target/release/burnlab train cnn --model "$model" --data "$data" --run-dir "$run" "${epochs[@]}" "$@" > "$run.log" 2>&1 \
    || { tail -5 "$run.log"; exit 1; }
  # Inference timed as the peer times it: 3 extra passes over the test set, the median.
  ./target/release/burnlab eval "$run" --data "$data" --timed-passes 3 > "$run.eval.log" 2>&1 \
    || { tail -5 "$run.eval.log"; exit 1; }
  peer_line=""
  if [ -n "${PEER_PYTHON:-}" ] && [ "$model" != resnet9 ]; then
    pm=$model; [ "$model" = lenet5 ] && pm=lenet
    peer_line=$(cd "$peers" && "$PEER_PYTHON" cifar_train.py "$data" --model "$pm" --infer-reps 3 | tail -1)
  fi
  python3 - "$run" "$model" "$peer_line" <<'PY'
import json, sys
run, model, peer = sys.argv[1], sys.argv[2], sys.argv[3]
m = json.load(open(f"{run}/metrics.json"))
meta = json.load(open(f"{run}/run.json"))
timed = sorted(json.load(open(f"{run}/eval.json"))["timed_images_per_s"])
train = m["train_images_per_s"]
infer = timed[len(timed) // 2]
print(f"task=bench_cnn model={model} backend={meta['backend']} epochs={m['epochs']} train_images={m['train_images']}")
print(f"train_img_per_s={train:.1f}")
print("epoch_img_per_s=" + ",".join(f"{v:.0f}" for v in m.get("epoch_images_per_s", [])))
print(f"infer_img_per_s_bs256={infer:.1f}")
print("infer_img_per_s_passes=" + ",".join(f"{v:.0f}" for v in timed) + f",eval_pass={m['test']['images_per_s']:.0f}")
print(f"wall_s={m['train_seconds']:.1f}")
print(f"valid_acc={m['valid']['accuracy']:.4f}")
print(f"test_acc={m['test']['accuracy']:.4f}")
if m.get("test_tta"):
    print(f"test_acc_flip_tta={m['test_tta']['accuracy']:.4f}")
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
done
