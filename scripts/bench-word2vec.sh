#!/usr/bin/env bash
# word2vec benchmark: skip-gram, dim 100, window 5, negative 5, min_count 5, sample 1e-3,
# 5 epochs, 2 threads on wiki-mini (BURNLAB_CORPUS overrides), then analogy accuracy and
# WordSim-353 Spearman. With PEER_PYTHON set (a Python with gensim), gensim trains the same
# settings right after (../shared/peers/word2vec/w2v_gensim_train.py, workers 2), is scored by
# the same code, and the ratios print. key=value lines.
set -euo pipefail
cd "$(dirname "$0")/.."
text="$(realpath "${BENCH_TEXT_DIR:-../shared/datasets/text}")"
corpus="$(realpath "${BURNLAB_CORPUS:-$text/wiki-mini.txt}")"
out="${BENCH_RUN_DIR:-$(mktemp -d)}"
mkdir -p "$out"
threads="${BENCH_THREADS:-2}"
cargo build --release -p burnlab -q
bin=./target/release/burnlab
score() {
  "$bin" eval-words "$1" --analogies "$text/questions-words.txt" --similarity "$text/wordsim353.tsv" \
    | grep -E "^analogy_(all|sem|syn)_(acc|covered)|^similarity_(spearman|covered)" | sed "s/^/$2/"
}
run="$out/bench-word2vec"
"$bin" train word2vec --corpus "$corpus" --threads "$threads" --run-dir "$run" "$@" > "$run.log" 2>&1 || { tail -5 "$run.log"; exit 1; }
python3 - "$run" <<'PY'
import json, sys
m = json.load(open(f"{sys.argv[1]}/metrics.json"))
print(f"task=bench_word2vec epochs={m['epochs']} threads={m['threads']} vocab={m['vocab_size']} words_per_epoch={m['words_per_epoch']}")
print(f"words_per_s={m['words_per_s']:.0f}")
print(f"train_s={m['train_seconds']:.2f}")
print(f"final_loss={m['final_loss']:.4f}")
PY
score "$run" ""
if [ -n "${PEER_PYTHON:-}" ]; then
  peer=$(cd ../shared/peers/word2vec 2>/dev/null || cd "${PEER_DIR:?set PEER_DIR}"; "$PEER_PYTHON" w2v_gensim_train.py "$corpus" "$out/gensim.vec" --workers "$threads" --seed 1)
  gensim_wps=$(echo "$peer" | sed -n 's/^raw_words_per_s=//p')
  gensim_s=$(echo "$peer" | sed -n "s/^train_wall_s=//p")
  echo "gensim_raw_words_per_s=$gensim_wps"
  echo "gensim_train_s=$gensim_s"
  score "$out/gensim.vec" "gensim_"
  ours=$(python3 -c "import json;print(json.load(open('$run/metrics.json'))['words_per_s'])")
  python3 -c "print(f'ratio_words_per_s={$ours / $gensim_wps:.3f}')"
fi
