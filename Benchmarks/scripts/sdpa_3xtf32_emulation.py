#!/usr/bin/env python3
"""Causal softmax attention in 3xTF32, emulated in numpy (CUTLASS's OpMultiplyAddFastF32, the fp32
path of PyTorch's memory-efficient SDPA): every matrix-product operand x is split into big (x with its
13 low significand bits dropped) and small = tf32(x - big), round to nearest even, and
A@B = As@Bb + Ab@Bs + Ab@Bb in Float32. Softmax in Float32 with the row maximum subtracted.

Writes, for seeds [FIRST, LAST) and N in 1..129, dk in {32, 64, 128}, two heads, inputs and outputs
(npz, bhnd) and a cases.json listing each case twice, declared `float32` and `float32-3xtf32`; judge
with `python3 scripts/gpu/judge_real.py OUTDIR` (every case is a correct kernel in its source's
arithmetic; the `float32` lines show what declaring the wrong one costs).

usage: sdpa_3xtf32_emulation.py OUTDIR FIRST LAST
"""
import json
import os
import sys

import numpy as np


def truncate_tf32(x):
    return (x.astype(np.float32).view(np.uint32) & np.uint32(0xFFFFE000)).view(np.float32)


def round_tf32(x):
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0xFFF + ((u >> 13) & 1)) & 0xFFFFE000
    return u.astype(np.uint32).view(np.float32)


def matmul_3xtf32(a, b):
    ab, bb = truncate_tf32(a), truncate_tf32(b)
    asm, bsm = round_tf32(a - ab), round_tf32(b - bb)
    c = np.matmul(asm, bb, dtype=np.float32)
    c = c + np.matmul(ab, bsm, dtype=np.float32)
    return c + np.matmul(ab, bb, dtype=np.float32)


def main():
    out, first, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    os.makedirs(out, exist_ok=True)
    cases = []
    for seed in range(first, last):
        for n in (1, 2, 3, 5, 9, 17, 33, 64, 129):
            for d in (32, 64, 128):
                rng = np.random.default_rng(seed * 1000 + n * 7 + d)
                q, k, v = (rng.standard_normal((1, 2, n, d)).astype(np.float32) for _ in range(3))
                scale = np.float32(1 / np.sqrt(d))
                s = matmul_3xtf32(q, np.swapaxes(k, -1, -2)) * scale
                s = np.where(np.tril(np.ones((n, n), bool)), s, -np.inf).astype(np.float32)
                p = np.exp(s - s.max(-1, keepdims=True)).astype(np.float32)
                o = (matmul_3xtf32(p, v) / p.sum(-1, keepdims=True, dtype=np.float32)).astype(np.float32)
                name = f"sdpa3x-s{seed}-n{n}-d{d}"
                np.savez(os.path.join(out, name + ".inputs.npz"), q=q, k=k, v=v)
                np.savez(os.path.join(out, name + ".candidate.npz"), o=o)
                for arith in ("float32", "float32-3xtf32"):
                    cases.append(dict(name=name + "@" + arith, inputs=name + ".inputs.npz",
                                      candidate=name + ".candidate.npz", core="exponential-nodecay-sum",
                                      layout="bhnd", arith=arith, scale=repr(float(scale)), correct=True))
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump({"cases": cases}, f, indent=1)
    print(f"{len(cases)} cases in {out}")


if __name__ == "__main__":
    main()
