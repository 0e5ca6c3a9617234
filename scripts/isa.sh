# Sourced by the bench scripts after the build. Prints which instruction set burnlab's kernels
# run on (`BURNLAB_ISA` lowers it) and the CPU; restricts the PyTorch peer the same way
# (ATEN_CPU_CAPABILITY for ATen's kernels, ONEDNN_MAX_CPU_ISA for its convolutions,
# MKL_ENABLE_INSTRUCTIONS for its matrix products: linear layers and recurrences) and checks
# that each took.
devices=$(./target/release/burnlab devices 2>/dev/null | grep '^flex ' || true)
bench_isa=$(sed -n 's/.* kernels isa=\([a-z0-9]*\).*/\1/p' <<< "$devices")
[ -n "$bench_isa" ] || { echo "bench: could not read the kernels' ISA from 'burnlab devices'" >&2; exit 1; }
gemm_isa=$(sed -n 's/.* gemm isa=\([a-z0-9]*\).*/\1/p' <<< "$devices")
echo "isa=$bench_isa gemm_isa=${gemm_isa:-unknown} cpu=\"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)\""
# Burn's matmuls run the `gemm` crate, which BURNLAB_ISA cannot lower: scripts/bench-build.sh
# builds without its AVX-512 kernels for a lowered ISA.
if [ -n "${BURNLAB_ISA:-}" ] && [ "$BURNLAB_ISA" != avx512 ] && [ "$gemm_isa" = avx512 ]; then
  echo "bench: BURNLAB_ISA=$BURNLAB_ISA but gemm runs avx512: build with scripts/bench-build.sh" >&2
  exit 1
fi
want_peer="" want_mkl=""
case "${BURNLAB_ISA:-}" in
  avx2) export ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2
    want_peer=AVX2 want_mkl=AVX2 ;;
  plain) export ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 MKL_ENABLE_INSTRUCTIONS=SSE4_2
    want_peer=DEFAULT want_mkl=SSE4.2 ;;
esac
if [ -n "${PEER_PYTHON:-}" ]; then
  peer_cap=$("$PEER_PYTHON" -c 'import torch; print(torch.backends.cpu.get_cpu_capability())')
  echo "peer_isa=$peer_cap"
  if [ -n "$want_peer" ] && [ "$peer_cap" != "$want_peer" ]; then
    echo "bench: BURNLAB_ISA=$BURNLAB_ISA but torch runs $peer_cap: the restriction did not take" >&2
    exit 1
  fi
  # MKL names the instruction set it dispatched to in its verbose banner, e.g. "… Intel(R)
  # Advanced Vector Extensions 2 (Intel(R) AVX2) enabled processors …"; on an AMD CPU it names
  # none ("… Intel(R) Architecture processors …": generic), and a torch without MKL (an ARM
  # build) prints no banner. (`|| true`: under pipefail a grep that finds nothing would end the
  # benchmark.)
  banner=$(MKL_VERBOSE=1 "$PEER_PYTHON" -c 'import torch; torch.ones(8, 8) @ torch.ones(8, 8)' 2>/dev/null \
    | grep -m1 '^MKL_VERBOSE oneMKL\|^MKL_VERBOSE Intel(R) MKL' || true)
  peer_mkl=$(grep -o '(Intel(R) [A-Z][A-Za-z0-9.-]*)' <<< "$banner" | head -1 | sed 's/(Intel(R) \(.*\))/\1/' || true)
  if [ -z "$banner" ]; then peer_mkl=none; elif [ -z "$peer_mkl" ]; then peer_mkl=unnamed; fi
  echo "peer_mkl_isa=$peer_mkl"
  if [ -n "$want_mkl" ] && [ "$peer_mkl" != none ] && [ "$peer_mkl" != unnamed ] && [ "$peer_mkl" != "$want_mkl" ]; then
    echo "bench: BURNLAB_ISA=$BURNLAB_ISA but MKL runs $peer_mkl: the restriction did not take" >&2
    exit 1
  fi
fi
