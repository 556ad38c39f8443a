#!/usr/bin/env bash
# Issue 12 measurements, side by side in one run, repeated (the machine is
# shared: take medians across repetitions). Default environment throughout
# (no OPENBLAS_* variables), except where a line says otherwise.
#   usage: Benchmarks/scripts/fast-by-default.sh [BINARY] [REPEATS] [N]
# OLD_BIN=path also times an earlier build's float32 and float16 lines.
set -uo pipefail
bin=${1:-.build/release/mambacheck} reps=${2:-3} n=${3:-16384}
here=$(cd "$(dirname "$0")" && pwd)
for r in $(seq "$reps"); do
  echo "=== repetition $r"
  python3 "$here/numpy_chunked_peer.py" "$n" 64 64 3
  "$bin" bench --variant 2mamba --form chunked --mode float32 --length "$n" --head-dim 64 --runs 3 | tail -1
  MAMBACHECK_KEEP_OPENBLAS_CORE=1 "$bin" bench --variant 2mamba --form chunked --mode float32 --length "$n" \
    --head-dim 64 --runs 3 | tail -1 | sed 's/^/[OpenBLAS own core] /'
  "$bin" bench --variant 2mamba --form chunked --mode float16 --length "$n" --head-dim 64 --runs 3 | tail -1
  if [ -n "${OLD_BIN:-}" ]; then
    for m in float32 float16; do
      "$OLD_BIN" bench --variant 2mamba --form chunked --mode $m --length "$n" --head-dim 64 --runs 3 | tail -1 \
        | sed 's/^/[old build] /'
    done
  fi
done
