#!/usr/bin/env bash
# word2vec benchmark: skip-gram (BENCH_ARCH=cbow for CBOW), dim 100, window 5, negative 5,
# min_count 5, sample 1e-3, 5 epochs, 2 threads on wiki-mini (BURNLAB_CORPUS overrides), then
# analogy accuracy and WordSim-353 Spearman. BENCH_SEEDS="1 2 3" repeats every run per seed and
# prints the mean, min and max (the seed-to-seed spread). With PEER_PYTHON set (a Python with
# gensim), gensim trains the same settings right after each burnlab run (skip-gram:
# ../shared/peers/word2vec/w2v_gensim_train.py; CBOW: scripts/gensim_cbow.py), is scored by the
# same code, and the ratios print. Extra arguments go to `burnlab train word2vec`
# (e.g. `--set train.path=batched`). key=value lines.
set -euo pipefail
cd "$(dirname "$0")/.."
text="$(realpath "${BENCH_TEXT_DIR:-../shared/datasets/text}")"
corpus="$(realpath "${BURNLAB_CORPUS:-$text/wiki-mini.txt}")"
out="${BENCH_RUN_DIR:-$(mktemp -d)}"
mkdir -p "$out"
threads="${BENCH_THREADS:-2}"
arch="${BENCH_ARCH:-skipgram}"
seeds="${BENCH_SEEDS:-1}"
peers="$(realpath ../shared/peers/word2vec 2>/dev/null || echo "${PEER_DIR:-}")"
bash scripts/bench-build.sh
. scripts/isa.sh
bin=./target/release/burnlab
figures="$out/figures.txt"
: > "$figures"
score() { # VECTORS PREFIX
  "$bin" eval-words "$1" --analogies "$text/questions-words.txt" --similarity "$text/wordsim353.tsv" \
    | grep -E "^analogy_(all|sem|syn)_(acc|covered)|^similarity_(spearman|covered)" | sed "s/^/$2/"
}
for seed in $seeds; do
  run="$out/burnlab-$arch-$seed"
  "$bin" train word2vec --corpus "$corpus" --arch "$arch" --threads "$threads" --seed "$seed" --run-dir "$run" "$@" \
    > "$run.log" 2>&1 || { tail -5 "$run.log"; exit 1; }
  python3 - "$run" "$seed" >> "$figures" <<'PY'
import json, sys
m = json.load(open(f"{sys.argv[1]}/metrics.json"))
print(f"seed={sys.argv[2]}")
print(f"path={m['path']} backend={m['backend']} epochs={m['epochs']} threads={m['threads']} vocab={m['vocab_size']} words_per_epoch={m['words_per_epoch']}")
print(f"words_per_s={m['words_per_s']:.0f}")
print(f"train_s={m['train_seconds']:.2f}")
print(f"final_loss={m['final_loss']:.4f}")
PY
  score "$run" "" >> "$figures"
  if [ -n "${PEER_PYTHON:-}" ]; then
    vec="$out/gensim-$arch-$seed.vec"
    if [ "$arch" = cbow ]; then
      peer=$("$PEER_PYTHON" scripts/gensim_cbow.py "$corpus" "$vec" --workers "$threads" --seed "$seed")
    else
      peer=$(cd "$peers" && "$PEER_PYTHON" w2v_gensim_train.py "$corpus" "$vec" --workers "$threads" --seed "$seed")
    fi
    echo "$peer" | sed -n 's/^raw_words_per_s=/gensim_raw_words_per_s=/p; s/^train_wall_s=/gensim_train_s=/p' >> "$figures"
    score "$vec" "gensim_" >> "$figures"
  fi
done
# One seed: its lines as they are. Several: the mean of every figure, and min and max where they differ.
python3 - "$figures" "$arch" <<'PY'
import sys
from collections import defaultdict
vals, text = defaultdict(list), []
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith(("seed=", "path=")):
        text.append(line)
        continue
    k, v = line.split("=", 1)
    vals[k].append(float(v))
print(f"task=bench_word2vec arch={sys.argv[2]} seeds={len(vals['words_per_s'])}")
print(next(l for l in text if l.startswith("path=")))
for k, v in vals.items():
    fmt = (lambda x: f"{x:.0f}") if k.endswith("per_s") else (lambda x: f"{x:.4f}")
    print(f"{k}={fmt(sum(v) / len(v))}")
    if len(v) > 1 and min(v) != max(v):
        print(f"{k}_min={fmt(min(v))}")
        print(f"{k}_max={fmt(max(v))}")
if "gensim_raw_words_per_s" in vals:
    ours, theirs = vals["words_per_s"], vals["gensim_raw_words_per_s"]
    print(f"ratio_words_per_s={sum(ours) / sum(theirs):.3f}")
PY
