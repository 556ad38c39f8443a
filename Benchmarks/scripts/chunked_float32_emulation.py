#!/usr/bin/env python3
"""A Float32 chunk kernel of the linear-decay core, emulated in numpy, with any chunk length.

Per chunk: a sequential Float32 `cumsum` of the per-step log-decays (chunk-local prefix sums),
`exp` of their differences, Float32 GEMMs for the intra-chunk and state products, the state
carried in Float32 between chunks. Used to measure the verdict on a correct kernel whose chunk
length differs from the declared one (Proofs/T9, "An undeclared chunk length").

With SCAN the chunk-local prefix sums are formed in another Float32 order, as parallel scans do:
`hillis-steele` (log-depth, every element updated each step) or `blocked8` (sequential within 8-token
blocks, block totals scanned, then added back: a warp-level scan). Used to measure which error
patterns `PrefixScanInference` reads as a parallel scan.

usage: chunked_float32_emulation.py INPUTS.safetensors OUT.safetensors CHUNK [SCAN]   (layout bnhd)
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import mambacheck_runner as mr  # noqa: E402

inp, out, C = sys.argv[1], sys.argv[2], int(sys.argv[3])
scan = sys.argv[4] if len(sys.argv) > 4 else "sequential"


def prefix(x):
    """Inclusive Float32 prefix sums of x in the order `scan` names."""
    x = np.asarray(x, np.float32)
    if scan == "sequential":
        return np.cumsum(x, dtype=np.float32)
    if scan == "hillis-steele":
        y, d = x.copy(), 1
        while d < len(y):
            z = y.copy()
            z[d:] = (y[d:] + y[:-d]).astype(np.float32)
            y, d = z, 2 * d
        return y
    if scan == "blocked8":
        y = x.copy()
        blocks = [np.cumsum(y[i:i + 8], dtype=np.float32) for i in range(0, len(y), 8)]
        offset = np.cumsum(np.array([blk[-1] for blk in blocks], np.float32), dtype=np.float32)
        for i in range(1, len(blocks)):
            blocks[i] = (blocks[i] + offset[i - 1]).astype(np.float32)
        return np.concatenate(blocks)
    raise SystemExit(f"unknown scan {scan!r}: expected sequential, hillis-steele or blocked8")


x, _ = mr.load_safetensors(inp)
q, k, v = (np.asarray(x[n], np.float32) for n in ("q", "k", "v"))
a = np.asarray(x["a"] if "a" in x else x["g"], np.float32)  # FLA dumps name the log-decays g
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
                ell = prefix(a[b, c0:c1, h])
                Q, Kc, Vc = q[b, c0:c1, h], k[b, c0:c1, h], v[b, c0:c1, h]
                W = np.exp(ell[:, None] - ell[None, :]).astype(f32) * (Q @ Kc.T)
                W = np.where(np.tril(np.ones_like(W)) > 0, W, f32(0))
                o[b, c0:c1, h] = W @ Vc + np.exp(ell)[:, None].astype(f32) * (Q @ S)
                S = (np.exp(ell[-1]).astype(f32) * S + (Kc * np.exp(ell[-1] - ell)[:, None].astype(f32)).T @ Vc).astype(f32)
            fs[b, h] = S
with open(out, "wb") as f:
    mr.write_safetensors(f, {"o": o, "final_state": fs})
