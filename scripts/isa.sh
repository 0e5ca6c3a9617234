# Sourced by the bench scripts after the build. Prints which instruction set burnlab's kernels
# run on (`BURNLAB_ISA` lowers it) and the CPU; restricts the PyTorch peer the same way
# (ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA) and checks that torch took it.
bench_isa=$(./target/release/burnlab devices 2>/dev/null | sed -n 's/.* kernels isa=\([a-z0-9]*\).*/\1/p')
[ -n "$bench_isa" ] || { echo "bench: could not read the kernels' ISA from 'burnlab devices'" >&2; exit 1; }
echo "isa=$bench_isa cpu=\"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)\""
want_peer=""
case "${BURNLAB_ISA:-}" in
  avx2) export ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2; want_peer=AVX2 ;;
  plain) export ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41; want_peer=DEFAULT ;;
esac
if [ -n "${PEER_PYTHON:-}" ]; then
  peer_cap=$("$PEER_PYTHON" -c 'import torch; print(torch.backends.cpu.get_cpu_capability())')
  echo "peer_isa=$peer_cap"
  if [ -n "$want_peer" ] && [ "$peer_cap" != "$want_peer" ]; then
    echo "bench: BURNLAB_ISA=$BURNLAB_ISA but torch runs $peer_cap: the restriction did not take" >&2
    exit 1
  fi
fi
