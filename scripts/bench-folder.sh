#!/usr/bin/env bash
# Own-images benchmark: a 2-class folder of photos of mixed sizes in the train/ + val/ layout
# (made from the shared CIFAR-10 JPEGs by examples/make_folder.rs), ResNet-18 at 224 px for 2
# epochs with the folder config (RandomResizedCrop + flip, Resize + CenterCrop, ImageNet
# normalisation, SGD momentum 0.9, batch 32, cosine), 2 CPU threads; with PEER_PYTHON set, the
# PyTorch peer (../shared/peers/torch/folder_train.py) right after it on the same folder.
# Prints key=value lines. `bench-folder.sh [-- TRAIN ARGS]`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${1:-}" = "--" ] && shift
data="$(realpath "${BURNLAB_DATA:-../shared/datasets/cifar10-jpg}")"
out="${BENCH_RUN_DIR:-$(mktemp -d)}"
mkdir -p "$out"
peers="${PEER_DIR:-../shared/peers/torch}"
folder="$out/pets"
cargo build --release -p burnlab -q --bin burnlab --example make_folder
. scripts/isa.sh
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-2}"
[ -d "$folder" ] || ./target/release/examples/make_folder "$data" "$folder" > /dev/null
run="$out/bench-resnet18"
./target/release/burnlab train cnn --model resnet18 --data "$folder" \
  --image-size 224 --epochs 2 --run-dir "$run" "$@" > "$run.log" 2>&1 || { tail -5 "$run.log"; exit 1; }
./target/release/burnlab eval "$run" --batch-size 32 --timed-passes 3 > "$run.eval.log" 2>&1 \
  || { tail -5 "$run.eval.log"; exit 1; }
peer_line=""
if [ -n "${PEER_PYTHON:-}" ]; then
  peer_line=$(cd "$peers" && "$PEER_PYTHON" folder_train.py "$folder" --model resnet18 --image-size 224 \
    --epochs 2 --threads 2 --infer-reps 3 | tail -1)
fi
python3 - "$run" "$peer_line" <<'PY'
import json, sys
run, peer = sys.argv[1], sys.argv[2]
m = json.load(open(f"{run}/metrics.json"))
timed = sorted(json.load(open(f"{run}/eval.json"))["timed_images_per_s"])
train, infer = m["train_images_per_s"], timed[len(timed) // 2]
print(f"task=bench_folder model=resnet18 image_size=224 epochs={m['epochs']} train_images={m['train_images']}")
print(f"train_img_per_s={train:.2f}")
print(f"sec_per_epoch={m['train_images'] / max(train, 1e-9):.1f}")
print(f"infer_img_per_s={infer:.2f}")
print(f"eval_split={m.get('test_split', 'test')} eval_acc={m['test']['accuracy']:.4f}")
print(f"peak_rss_mib={m['peak_rss_mib']:.0f}")
if peer:
    p = dict(kv.split("=", 1) for kv in peer.split() if "=" in kv)
    print(f"peer_train_img_per_s={float(p['train_img_per_s']):.2f}")
    print(f"peer_sec_per_epoch={float(p['sec_per_epoch']):.1f}")
    print(f"peer_infer_img_per_s={float(p['infer_img_per_s']):.2f}")
    print(f"peer_eval_acc={float(p['eval_acc']):.4f}")
    print(f"peer_peak_rss_mib={p['peak_rss_mib']}")
    print(f"ratio_train={train / float(p['train_img_per_s']):.3f}")
    print(f"ratio_infer={infer / float(p['infer_img_per_s']):.3f}")
PY
