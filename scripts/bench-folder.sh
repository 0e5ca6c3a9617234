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
bash scripts/bench-build.sh --bin burnlab --example make_folder
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
python3 scripts/bench_report.py bench_folder "$run" "$peer_line" resnet18
