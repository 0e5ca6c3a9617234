# burnlab: `just` lists the recipes. Extra arguments pass through: `just train-mlp --backend wgpu`.

set positional-arguments

default:
    @just --list

# Train the 3072-512-256-10 MLP on CIFAR-10 (downloads it unless --data/BURNLAB_DATA is given)
train-mlp *args:
    cargo run --release -p burnlab -- train mlp --config configs/mlp-cifar10.toml "$@"

# Train a CNN on CIFAR-10: ResNet-20 by default; `--model lenet5|resnet9|resnet20|resnet32|resnet56`
train-cnn *args:
    cargo run --release -p burnlab -- train cnn "$@"

# word2vec on text8 (downloaded) or `--corpus FILE_OR_DIR`: `just train-word2vec [--arch cbow] [--dim 300]`
train-word2vec *args:
    cargo run --release -p burnlab -- train word2vec "$@"

# Character language model on Tiny Shakespeare (downloads it unless --corpus/BURNLAB_TEXT is
# given): 2-layer LSTM by default, `--cell rnn|gru`, then `burnlab sample RUN --prime "ROMEO:"`
train-rnn *args:
    cargo run --release -p burnlab -- train rnn "$@"

# Train the linear softmax classifier (add `--set model.loss=hinge` for the SVM)
train-softmax *args:
    cargo run --release -p burnlab -- train mlp --config configs/softmax-cifar10.toml "$@"

# Layer table of a model: `just summary resnet20` (shapes, parameters, receptive fields)
summary *args:
    cargo run --release -p burnlab -- summary "$@"

# Evaluate a run on the test set
eval run *args:
    cargo run --release -p burnlab -- eval "$@"

# Pictures of runs (curves, LR, confusion matrix, worst mistakes, word map) and an index.html:
# `just report runs/lenet5-cifar10 [runs/other…] [--out DIR]`
report *args:
    cargo run --release -p burnlab -- report "$@"

# Stratified N-fold cross-validation over the training split: `just cv mlp --folds 5 --epochs 10`
# (`--final` then trains on the whole training split and reports test; `burnlab report PARENT`)
cv *args:
    cargo run --release -p burnlab -- cv "$@"

# One run per point of a grid of config values, ranked by validation score, with charts:
# `just sweep mlp --grid 'model.hidden=[],[128]' --grid optim.weight_decay=0,1e-3 [--folds 5] [--jobs 2]`
sweep *args:
    cargo run --release -p burnlab -- sweep "$@"

# The 2-D demo: decision regions as a small net learns (`--data spiral|moons|circles|xor|blobs|FILE.csv`,
# `--model logistic|perceptron|mlp`, `--compare hidden=1,2,4,16`)
playground *args:
    cargo run --release -p burnlab -- playground "$@"

# Table of the runs in a folder (default runs/): task, model, epochs, best valid, test, status
runs *args:
    cargo run --release -p burnlab -- runs "$@"

# `cargo fmt --check` and Clippy over every crate and target, warnings as errors; the kernels'
# NEON paths too where the aarch64 target is installed (they compile only for it). CI lints the
# same code as its tests build (see .ci/run).
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets --release -- -D warnings
    if rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then \
      cargo clippy -p burnlab-kernels --all-targets --release --target aarch64-unknown-linux-gnu -- -D warnings; \
    fi

# Run every test (release profile: Burn is compiled once for build and tests)
test *args:
    cargo test --release --workspace "$@"

# The kernels crate's tests for aarch64, cross-built and run under qemu (Debian: gcc-aarch64-linux-gnu,
# libc6-dev-arm64-cross, qemu-user; `rustup target add aarch64-unknown-linux-gnu`): NEON and plain paths
test-aarch64 *args:
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu" \
    cargo test --release -p burnlab-kernels --target aarch64-unknown-linux-gnu "$@"

# kill -9 training at random moments (CHAOS_KILLS, default 10 here, 3 in `just test`), resume each
# time, and compare with the uninterrupted run: an image model, a char-LM, word2vec (one thread)
chaos kills="10":
    CHAOS_KILLS={{kills}} cargo test --release -p burnlab --test cli -- chaos --nocapture --test-threads 1

# Fuzz one parser (`just fuzz TARGET [SECONDS]`, `just fuzz all 600` for every target; targets are
# in crates/train/src/fuzz.rs): libFuzzer through cargo-fuzz where `cargo +nightly fuzz` exists,
# else the stable mutation engine. A panicking input is saved under fuzz/artifacts/TARGET/.
fuzz target seconds="600":
    #!/usr/bin/env bash
    set -euo pipefail
    if [ "{{target}}" != all ] && cargo +nightly fuzz --version >/dev/null 2>&1; then
      cd fuzz && cargo +nightly fuzz run "{{target}}" -- -max_total_time={{seconds}} -rss_limit_mb=2048 -malloc_limit_mb=1024
    else
      cargo run --release -q -p burnlab --example fuzz -- "{{target}}" {{seconds}}
    fi

# The kernels' tests under Miri (nightly with the miri component): the plain paths, every kernel but
# the gemm-crate ones (conv's im2col, the recurrences). Tree borrows: crossbeam-epoch (rayon's
# deque) trips the older stacked-borrows model; ignore-leaks: rayon's global pool threads are never
# joined, which Miri otherwise reports after the last test passes. Takes ~7 minutes.
miri:
    MIRIFLAGS="-Zmiri-tree-borrows -Zmiri-permissive-provenance -Zmiri-ignore-leaks" cargo +nightly miri test -p burnlab-kernels -- \
      simd:: packed:: direct:: channels:: gemv:: vmath:: par:: residual:: batch_norm:: hogwild:: isa:: linear::

# Convolution kernels' GFLOP/s per ISA on ResNet-20's and ResNet-18's layers beside the FMA
# peak, one core; Winograd against the direct kernels; the linear kernel against `gemm`
# (`BURNLAB_ISA=avx2 just bench-kernels` for one ISA); the recurrences' per-step products too
# (`just bench-kernels packed`: that section only; also conv, winograd, linear). With gemm's
# AVX-512 kernels, as the `burnlab` binary has them by default.
bench-kernels *args:
    cargo run --release -p burnlab-kernels --features gemm-avx512 --example kernel_speed -- {{args}}

# Each convolution layer of LeNet-5, ResNet-20 and ResNet-18 through burnlab against Burn's own
# conv, forward and training step, with the ratio (`BURNLAB_ISA=plain just bench-layers`: the floor)
bench-layers *args:
    cargo run --release -p burnlab-ops --example conv_layers -- {{args}}

# MLP benchmark on the shared CIFAR-10 image folder: key=value lines (BURNLAB_DATA overrides the path)
bench-mlp *args:
    bash scripts/bench-mlp.sh "$@"

# Own-images benchmark: ResNet-18 at 224 px on a 2-class folder of mixed-size photos made from the
# CIFAR-10 JPEGs, 2 epochs; with PEER_PYTHON set, the PyTorch peer right after it
bench-folder *args:
    bash scripts/bench-folder.sh "$@"

# A trained image run as ONNX: builds burnlab with its `onnx` feature (Burn's exporter, experimental
# upstream; the first build with it recompiles Burn), then `burnlab export RUN --format onnx`
export-onnx run *args:
    cargo run --release -p burnlab --features onnx -- export {{run}} --format onnx {{args}}

# Fine-tuning benchmark: ResNet-18 at 224 px from a torchvision-layout checkpoint (BENCH_INIT, or
# torchvision's random init saved by PEER_PYTHON), 3 epochs head-only and full, each beside the peer
bench-finetune *args:
    bash scripts/bench-finetune.sh "$@"

# CNN benchmark: `just bench-cnn [lenet5] [resnet20] [resnet9] [-- --backend wgpu]`; with
# PEER_PYTHON=/path/to/python (torch installed) the PyTorch peer runs beside it and ratios print
bench-cnn *args:
    bash scripts/bench-cnn.sh "$@"

# word2vec benchmark on wiki-mini (skip-gram, 5 epochs, 2 threads) with analogy and WordSim-353
# scores; with PEER_PYTHON=/path/to/python (gensim installed) gensim runs beside it
bench-word2vec *args:
    bash scripts/bench-word2vec.sh "$@"

# Character-LM benchmark on Tiny Shakespeare: `just bench-rnn [lstm] [gru] [rnn] [-- --backend wgpu]`;
# with PEER_PYTHON=/path/to/python (torch installed) the PyTorch peer runs beside it
bench-rnn *args:
    bash scripts/bench-rnn.sh "$@"
