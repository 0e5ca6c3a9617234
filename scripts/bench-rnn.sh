#!/usr/bin/env bash
# Character-LM benchmark on Tiny Shakespeare (BURNLAB_TEXT overrides): embedding 64, hidden 256,
# seq 128, batch 32, Adam 2e-3, clip 1.0, 300 steps, for the 2-layer LSTM, 1-layer GRU and
# 1-layer vanilla RNN (`just bench-rnn lstm` for one). With PEER_PYTHON set (a Python with
# torch), ../shared/peers/torch/charlm.py trains the same cell right after and the ratios print.
# Arguments after `--` go to `burnlab train rnn` (e.g. `-- --backend wgpu`). key=value lines:
# train chars/s, validation loss, peak RSS, and sampling chars/s (20,000 characters, batch 1: the
# one-off start, copying the weights, is then ~5% of it).
# The LSTM starts with PyTorch's forget-gate bias (≈0, not the shipped config's 1.0) so that the
# comparison with nn.LSTM is like for like.
set -euo pipefail
cd "$(dirname "$0")/.."
cells=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do cells+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
# Sampling gets only the backend of the training arguments.
sample_args=()
prev=""
for a in "$@"; do
  [ "$prev" = --backend ] && sample_args=(--backend "$a")
  case "$a" in --backend=*) sample_args=("$a") ;; esac
  prev="$a"
done
[ ${#cells[@]} -gt 0 ] || cells=(lstm gru rnn)
text="$(realpath "${BURNLAB_TEXT:-../shared/datasets/tinyshakespeare/input.txt}")"
steps="${BENCH_STEPS:-300}"
out="${BENCH_RUN_DIR:-$(mktemp -d)}"
mkdir -p "$out"
bash scripts/bench-build.sh
. scripts/isa.sh
bin=./target/release/burnlab
# Runs a command with its output in a log file and prints its peak resident memory in MiB.
rss_of="$out/rss_of.py"
cat > "$rss_of" <<'PY'
import resource, subprocess, sys
with open(sys.argv[1], "w") as log:
    code = subprocess.run(sys.argv[2:], stdout=log, stderr=subprocess.STDOUT).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
sys.exit(code)
PY
echo "task=bench_rnn steps=$steps batch=32 seq=128 hidden=256 embed=64 text=$text"
for cell in "${cells[@]}"; do
  layers=1; extra=(); [ "$cell" = lstm ] && { layers=2; extra=(--set model.forget_bias=0); }
  run="$out/rnn-$cell"
  rss=$(python3 "$rss_of" "$run.log" "$bin" train rnn --cell "$cell" --layers "$layers" --corpus "$text" --epochs 1 --steps "$steps" \
    --run-dir "$run" "${extra[@]}" "$@") || { tail -5 "$run.log"; exit 1; }
  python3 "$rss_of" "$run.sample.log" "$bin" sample "$run" --length 20000 --seed 1 "${sample_args[@]}" > /dev/null || { tail -5 "$run.sample.log"; exit 1; }
  python3 - "$run" "$cell" "$rss" <<'PY'
import json, re, sys
m = json.load(open(f"{sys.argv[1]}/metrics.json"))
c = sys.argv[2]
print(f"{c}_chars_per_s={m['chars_per_s']:.0f}")
print(f"{c}_train_s={m['train_seconds']:.1f}")
print(f"{c}_valid_loss={m['valid_loss']:.4f}")
print(f"{c}_peak_rss_mib={float(sys.argv[3]):.0f}")
found = re.findall(r"([0-9.]+) chars/s", open(f"{sys.argv[1]}.sample.log").read())
print(f"{c}_sample_chars_per_s={float(found[-1]):.0f}" if found else f"{c}_sample_chars_per_s=NA")
PY
  if [ -n "${PEER_PYTHON:-}" ]; then
    line=$("$PEER_PYTHON" ../shared/peers/torch/charlm.py "$text" --cells "$cell" --steps "$steps" | grep '^task=charlm')
    python3 - "$run" "$cell" "$line" <<'PY'
import json, sys
m = json.load(open(f"{sys.argv[1]}/metrics.json"))
c = sys.argv[2]
peer = dict(kv.split("=", 1) for kv in sys.argv[3].split())
print(f"{c}_torch_chars_per_s={peer['train_chars_per_s']}")
print(f"{c}_torch_valid_loss={peer['val_loss']}")
print(f"{c}_torch_peak_rss_mib={peer['peak_rss_mib']}")
print(f"{c}_ratio_chars_per_s={m['chars_per_s'] / float(peer['train_chars_per_s']):.3f}")
print(f"{c}_valid_loss_minus_torch={m['valid_loss'] - float(peer['val_loss']):+.4f}")
PY
  fi
done
