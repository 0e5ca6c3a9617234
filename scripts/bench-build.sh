#!/usr/bin/env bash
# Builds the burnlab binary (and any `--example`s passed) for a benchmark. With
# BURNLAB_ISA=avx2|plain|neon (a lesser machine measured on a better one) without the `gemm`
# crate's AVX-512 kernels (the `gemm-avx512` feature), which BURNLAB_ISA cannot lower at run
# time: gemm, behind Burn's matmuls, picks its kernels once, itself (`burnlab devices`: gemm
# isa=). Switching between the two builds recompiles Burn's CPU backend (~7 min on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
features=()
case "${BURNLAB_ISA:-}" in avx2 | plain | neon) features=(--no-default-features) ;; esac
cargo build --release -p burnlab -q "${features[@]}" "$@"
