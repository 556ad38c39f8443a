#!/usr/bin/env bash
# Judges every candidate that `mambacheck calibrate --dump DIR` wrote with two
# builds of MambaCheck (e.g. the previous release and this one) and prints, per
# problem, how many correct candidates passed and planted bugs failed.
#   usage: verdict-before-after.sh DIR OLD_BINARY NEW_BINARY
# The old binary knows no --arith: tf32 is passed to it as --format tf32 (its
# only way to declare TF32), the rest as the dtype implies.
set -uo pipefail
dir=$1 old=$2 new=$3
printf '%-40s %-8s %-22s %-22s\n' problem tool "correct passed" "bugs failed"
for case in "$dir"/*/; do
  name=$(basename "$case")
  core=${name%%-float*}; core=${core%%-tf32*}; core=${core%%-bfloat*}
  arith=${name#"$core"-}; arith=${arith%-*-*}
  inputs=$(ls "$case"inputs.* | head -1)
  for tool in old new; do
    bin=$old; extra=()
    if [ $tool = new ]; then bin=$new; extra=(--arith "$arith"); elif [ "$arith" = tf32 ]; then extra=(--format tf32); fi
    cp=0; ct=0; bf=0; bt=0
    for cand in "$case"correct-* "$case"bug-*; do
      "$bin" compare --variant "$core" --inputs "$inputs" --candidate "$cand" "${extra[@]}" >/dev/null 2>&1
      rc=$?
      case $(basename "$cand") in
        correct-*) ct=$((ct+1)); [ $rc -eq 0 ] && cp=$((cp+1));;
        bug-*) bt=$((bt+1)); [ $rc -eq 1 ] && bf=$((bf+1));;
      esac
    done
    printf '%-40s %-8s %-22s %-22s\n' "$name" $tool "$cp/$ct" "$bf/$bt"
  done
done
