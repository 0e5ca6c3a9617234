#!/usr/bin/env bash
# Fine-tuning benchmark: ResNet-18 at 224 px started from a torchvision-layout checkpoint on the
# own-images benchmark folder (2 classes, train/ + val/, made from the CIFAR-10 JPEGs), 3 epochs
# head-only (train.freeze = "backbone") and 3 epochs full, each followed by the PyTorch peer
# (../shared/peers/torch/folder_train.py --init FILE [--freeze-backbone]) from the same file.
# The checkpoint is BENCH_INIT (e.g. torchvision's resnet18-f37072fd.pth), or, where this machine
# cannot download it, torchvision's own random initialisation saved by PEER_PYTHON (seed 0): then
# the accuracies compare the two implementations on identical starting weights, not ImageNet
# transfer. BENCH_MODES="head" (or "full") runs one mode. Prints key=value lines.
# `bench-finetune.sh [-- TRAIN ARGS]`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${1:-}" = "--" ] && shift
data="$(realpath "${BURNLAB_DATA:-../shared/datasets/cifar10-jpg}")"
out="${BENCH_RUN_DIR:-$(mktemp -d)}"
mkdir -p "$out"
peers="$(realpath "${PEER_DIR:-../shared/peers/torch}")"
folder="$out/pets"
epochs="${BENCH_EPOCHS:-3}"
bash scripts/bench-build.sh --bin burnlab --example make_folder
. scripts/isa.sh
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-2}"
[ -d "$folder" ] || ./target/release/examples/make_folder "$data" "$folder" > /dev/null
init="${BENCH_INIT:-}"
if [ -z "$init" ]; then
  [ -n "${PEER_PYTHON:-}" ] || { echo "set BENCH_INIT=FILE.pth or PEER_PYTHON (torch + torchvision)" >&2; exit 2; }
  init="$out/resnet18-torchvision-init.pth"
  [ -f "$init" ] || "$PEER_PYTHON" -c "import torch, torchvision; torch.manual_seed(0); \
torch.save(torchvision.models.resnet18().state_dict(), '$init')"
  echo "init=torchvision_random_seed0 (no ImageNet weights: accuracy compares implementations)"
else
  echo "init=$(basename "$init")"
fi
for mode in ${BENCH_MODES:-head full}; do
  run="$out/ft-$mode"
  rm -rf "$run"
  set_freeze=(); peer_freeze=()
  [ "$mode" = head ] && { set_freeze=(--set train.freeze=backbone); peer_freeze=(--freeze-backbone); }
  ./target/release/burnlab train cnn --model resnet18 --data "$folder" --image-size 224 \
    --epochs "$epochs" --run-dir "$run" --init-from "$init" "${set_freeze[@]}" "$@" > "$run.log" 2>&1 \
    || { tail -5 "$run.log"; exit 1; }
  python3 - "$run" "$mode" <<'PY'
import json, sys
run, mode = sys.argv[1], sys.argv[2]
m = json.load(open(f"{run}/metrics.json"))
print(f"mode={mode} train_img_per_s={m['train_images_per_s']:.2f} sec_per_epoch={m['train_images'] / max(m['train_images_per_s'], 1e-9):.1f} "
      f"val_acc={m['test']['accuracy']:.4f} peak_rss_mib={m['peak_rss_mib']:.0f}")
PY
  if [ -n "${PEER_PYTHON:-}" ]; then
    line=$(cd "$peers" && "$PEER_PYTHON" folder_train.py "$folder" --model resnet18 --image-size 224 \
      --epochs "$epochs" --threads 2 --infer-reps 1 --init "$init" "${peer_freeze[@]}" | tail -1)
    python3 - "$run" "$mode" "$line" <<'PY'
import json, sys
run, mode, line = sys.argv[1], sys.argv[2], sys.argv[3]
m = json.load(open(f"{run}/metrics.json"))
p = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
print(f"mode={mode} peer_train_img_per_s={float(p['train_img_per_s']):.2f} peer_sec_per_epoch={float(p['sec_per_epoch']):.1f} "
      f"peer_val_acc={float(p['eval_acc']):.4f} peer_peak_rss_mib={p['peak_rss_mib']} peer_isa={p.get('cpu_capability', '?')}")
print(f"mode={mode} ratio_train={m['train_images_per_s'] / float(p['train_img_per_s']):.3f}")
PY
  fi
done
