#!/usr/bin/env python3
"""Inputs and a Float32 candidate (output and gradients) for timing `mambacheck compare` on 2Mamba.

    python3 Benchmarks/scripts/compare_grads_inputs.py OUTDIR [N] [d] [seed] [--float32-backward]

Writes OUTDIR/inputs.npz (q, k, v: standard normal; a ~ -U(0.001, 0.1); do: standard normal; all
float32, [1, 1, N, d]) and OUTDIR/cand.npz: o from the chunked Float32 kernel of
python/mambacheck_reference_runner.py, and dq, dk, dv, da from its quadratic backward pass of
docs/MATH.md §5 evaluated in Float64 and rounded to Float32 (squared score, decay, sum normalisation,
scale 1/sqrt(d)). With --float32-backward the same pass is evaluated in Float32 throughout (at
N = 4096 it fails: the Float32 prefix sums L_i − L_j lose ~1e-5 absolute, see BENCHMARKS.md);
OUTDIR/cand_grads.npz holds the gradients alone (times the gradient oracle without the forward one).
Needs numpy only. Defaults: N = 4096, d = 64, seed 0.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import mambacheck_reference_runner as ref  # noqa: E402


def backward_f32(s, q, k, v, a, g):
    """dq, dk, dv, da of 2Mamba (zero initial state), quadratic form, every operation in Float32."""
    f32 = np.float32
    n = q.shape[0]
    s = f32(s)
    l = np.cumsum(a, dtype=f32)
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    gamma = np.exp(np.where(j <= i, l[:, None] - l[None, :], -np.inf).astype(f32)).astype(f32)
    x = s * (q @ k.T)
    w = x * x * gamma
    d = w.sum(axis=1, dtype=f32)
    y = (w @ v) / d[:, None]
    dw = (g @ v.T - (g * y).sum(axis=1, dtype=f32)[:, None]) / d[:, None]
    dv = (w / d[:, None]).T @ g
    dx = dw * (f32(2) * x) * gamma
    dq = s * (dx @ k)
    dk = s * (dx.T @ q)
    t = dw * w
    dl = t.sum(axis=1, dtype=f32) - t.sum(axis=0, dtype=f32)
    da = np.cumsum(dl[::-1], dtype=f32)[::-1]
    return (x.astype(f32) for x in (dq, dk, dv, da))


def main():
    f32 = "--float32-backward" in sys.argv
    args = [x for x in sys.argv[1:] if x != "--float32-backward"]
    out = args[0]
    n = int(args[1]) if len(args) > 1 else 4096
    d = int(args[2]) if len(args) > 2 else 64
    seed = int(args[3]) if len(args) > 3 else 0
    rng = np.random.default_rng(seed)
    q, k, v, g = (rng.standard_normal((n, d)).astype(np.float32) for _ in range(4))
    a = (-rng.uniform(0.001, 0.1, n)).astype(np.float32)
    s = 1 / np.sqrt(d)
    o, _, _ = ref.chunked_sequence("squared", "sum", s, q, k, v, a, np.zeros((d * (d + 1) // 2, d), np.float32),
                                   np.zeros(d * (d + 1) // 2, np.float32), None)
    if f32:
        dq, dk, dv, da = backward_f32(s, q, k, v, a, g)
    else:
        dq, dk, dv, da = (x.astype(np.float32) for x in ref.quadratic_backward("squared", "sum", s, q, k, v, a, g, None))
    os.makedirs(out, exist_ok=True)
    r = lambda x: x.reshape((1, 1) + x.shape)
    np.savez(os.path.join(out, "inputs.npz"), q=r(q), k=r(k), v=r(v), a=r(a), **{"do": r(g)})
    np.savez(os.path.join(out, "cand.npz"), o=r(o), dq=r(dq), dk=r(dk), dv=r(dv), da=r(da))
    np.savez(os.path.join(out, "cand_grads.npz"), dq=r(dq), dk=r(dk), dv=r(dv), da=r(da))


if __name__ == "__main__":
    main()
