#!/usr/bin/env bash
# CNN benchmark: `bench-cnn.sh [MODEL...] [-- TRAIN ARGS]`, models lenet5 (5 epochs), resnet20
# (1 epoch), resnet9 (its 24-epoch config; a GPU job). The recipe is the PyTorch peer's
# (../shared/peers/torch/cifar_train.py): SGD Nesterov 0.9, wd 5e-4, cosine, batch 128, crop+flip,
# standardisation; 2 CPU threads. With PEER_PYTHON set (a Python with torch), the peer runs right
# after each model in the same session and the ratios are printed. BENCH_ROUNDS=N (default 1)
# runs the pair N times, alternating, and prints every round's lines (`round=R` first) and then
# the median ratios: on a shared machine the load shifts over minutes, and one pair can land
# on either side of it. Prints key=value lines.
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
rounds="${BENCH_ROUNDS:-1}"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "bench-cnn: BENCH_ROUNDS must be a whole number ≥ 1, not '$rounds'" >&2; exit 1; }
bash scripts/bench-build.sh
. scripts/isa.sh
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-2}"
for model in "${models[@]}"; do
  # The peer's budgets (no warm-up): 5 epochs of LeNet-5, 1 of ResNet-20; ResNet-9 its own 24.
  case "$model" in lenet5) epochs=(--epochs 5) ;; resnet9) epochs=() ;; *) epochs=(--epochs 1 --set schedule.warmup_epochs=0) ;; esac
  reports="$out/reports-$model.txt"
  : > "$reports"
  for round in $(seq 1 "$rounds"); do
    run="$out/bench-$model"
    [ "$rounds" -gt 1 ] && { run="$out/bench-$model-r$round"; echo "round=$round"; }
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
    python3 scripts/bench_report.py bench_cnn "$run" "$peer_line" "$model" | tee -a "$reports"
  done
  if [ "$rounds" -gt 1 ]; then
    python3 - "$reports" "$model" <<'PY'
import statistics, sys
vals = {}
for line in open(sys.argv[1]):
    k, _, v = line.strip().partition("=")
    if k in ("train_img_per_s", "infer_img_per_s_bs256", "peer_train_img_per_s", "peer_infer_img_per_s_bs256", "ratio_train", "ratio_infer"):
        vals.setdefault(k, []).append(float(v))
print(f"task=bench_cnn_rounds model={sys.argv[2]} rounds={len(vals['train_img_per_s'])}")
for k, v in vals.items():
    print(f"{k}_rounds=" + ",".join(f"{x:.3f}" if k.startswith("ratio") else f"{x:.1f}" for x in v))
    print(f"{k}_median={statistics.median(v):.3f}" if k.startswith("ratio") else f"{k}_median={statistics.median(v):.1f}")
PY
  fi
done
