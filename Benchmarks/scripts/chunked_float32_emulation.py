#!/usr/bin/env python3
"""A Float32 chunk kernel of the linear-decay core, emulated in numpy, with any chunk length.

Per chunk: a sequential Float32 `cumsum` of the per-step log-decays (chunk-local prefix sums),
`exp` of their differences, Float32 GEMMs for the intra-chunk and state products, the state
carried in Float32 between chunks. Used to measure the verdict on a correct kernel whose chunk
length differs from the declared one (Proofs/T9, "An undeclared chunk length").

usage: chunked_float32_emulation.py INPUTS.safetensors OUT.safetensors CHUNK   (layout bnhd)
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import mambacheck_runner as mr  # noqa: E402

inp, out, C = sys.argv[1], sys.argv[2], int(sys.argv[3])
x, _ = mr.load_safetensors(inp)
q, k, v, a = (np.asarray(x[n], np.float32) for n in ("q", "k", "v", "a"))
S0 = np.asarray(x["initial_state"], np.float32) if "initial_state" in x else None
B, N, H, K = q.shape
V = v.shape[3]
f32 = np.float32
o = np.zeros((B, N, H, V), f32)
fs = np.zeros((B, H, K, V), f32)
with np.errstate(over="ignore", invalid="ignore"):  # exp of the masked upper triangle may overflow
    for b in range(B):
        for h in range(H):
            S = S0[b, h].copy() if S0 is not None else np.zeros((K, V), f32)
            for c0 in range(0, N, C):
                c1 = min(N, c0 + C)
                ell = np.cumsum(a[b, c0:c1, h], dtype=f32)
                Q, Kc, Vc = q[b, c0:c1, h], k[b, c0:c1, h], v[b, c0:c1, h]
                W = np.exp(ell[:, None] - ell[None, :]).astype(f32) * (Q @ Kc.T)
                W = np.where(np.tril(np.ones_like(W)) > 0, W, f32(0))
                o[b, c0:c1, h] = W @ Vc + np.exp(ell)[:, None].astype(f32) * (Q @ S)
                S = (np.exp(ell[-1]).astype(f32) * S + (Kc * np.exp(ell[-1] - ell)[:, None].astype(f32)).T @ Vc).astype(f32)
            fs[b, h] = S
with open(out, "wb") as f:
    mr.write_safetensors(f, {"o": o, "final_state": fs})
