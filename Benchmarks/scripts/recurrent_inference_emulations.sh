#!/bin/bash
# Float32 recurrence and chunk-8..64 emulations (chunked_float32_emulation.py) on the inputs of two real
# dumps, each judged `compare --arith float32 --scale 1`: which are inferred recurrent (Proofs/T9, "An
# undeclared recurrent form"), and the verdict. usage: recurrent_inference_emulations.sh [MAMBACHECK] [WORKDIR]
set -euo pipefail
bin=${1:-.build/release/mambacheck}
work=${2:-$(mktemp -d)}
mkdir -p "$work"
root=$(cd "$(dirname "$0")/../.." && pwd)
for inp in "$root"/Fixtures/real/mamba2-ssd-float32-ieee-n1000-h2-d64.inputs.safetensors \
           "$root"/Fixtures/real/fla-fused_recurrent_simple_gla-float32-tf32-n100-h2-d64.inputs.safetensors; do
  tag=$(basename "$inp" .inputs.safetensors)
  for cs in "1 sequential" "8 sequential" "8 hillis-steele" "16 sequential" "16 hillis-steele" \
            "32 sequential" "32 hillis-steele" "64 sequential" "64 blocked8" "64 hillis-steele"; do
    set -- $cs
    out="$work/$tag-C$1-$2.safetensors"
    [ -f "$out" ] || python3 "$root/Benchmarks/scripts/chunked_float32_emulation.py" "$inp" "$out" "$1" "$2" > /dev/null
    set +e
    res=$("$bin" compare --variant linear-decay-none --inputs "$inp" --candidate "$out" --layout bnhd \
          --arith float32 --scale 1 2>&1)
    rc=$?
    set -e
    inferred=$(echo "$res" | grep -q "recurrent form inferred" && echo recurrent || echo no)
    shares=$(echo "$res" | grep -m1 "allowance used" | sed 's/.*rows max/rows/')
    echo "$tag C=$1 $2: exit $rc, inferred $inferred, $shares"
  done
done
