#!/usr/bin/env python3
"""FlashAttention-2's arithmetic on fp16 inputs, emulated in numpy (causal softmax attention).

Forward: Float32 scores, the scale folded into `exp2`, a running maximum per 128x64 block, P rounded
to fp16 before P·V, Float32 accumulation, fp16 output. Backward: P recomputed from the forward's
log-sum-exp, D = rowsum(dO∘O) on the stored fp16 O, dS rounded to fp16 for the dQ and dK products.
Writes OUTDIR/fa_in.safetensors (q, k, v, do) and OUTDIR/fa_c.safetensors (o, dq, dk, dv); judge with
`mambacheck compare --variant exponential-nodecay-sum --layout bhnd --scale 0.125`.

usage: fa2_emulation.py OUTDIR [SEED]
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import mambacheck_runner as mr  # noqa: E402

outdir = sys.argv[1]
rng = np.random.default_rng(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
B, H, N, D = 1, 2, 1000, 64
q, k, v = [rng.standard_normal((B, H, N, D)).astype(np.float16) for _ in range(3)]
s = np.float32(0.125)
c = np.float32(s * np.float32(np.log2(np.e)))
BM, BN = 128, 64
o = np.zeros((B, H, N, D), np.float16)
for b in range(B):
    for h in range(H):
        Q, K, V = q[b, h].astype(np.float32), k[b, h].astype(np.float32), v[b, h].astype(np.float32)
        for i0 in range(0, N, BM):
            i1 = min(N, i0 + BM)
            m = np.full(i1 - i0, -np.inf, np.float32)
            l = np.zeros(i1 - i0, np.float32)
            acc = np.zeros((i1 - i0, D), np.float32)
            for j0 in range(0, i1, BN):
                j1 = min(N, j0 + BN)
                S = (Q[i0:i1] @ K[j0:j1].T).astype(np.float32)
                ii, jj = np.arange(i0, i1)[:, None], np.arange(j0, j1)[None, :]
                S = np.where(jj <= ii, S * c, np.float32(-np.inf)).astype(np.float32)
                mn = np.maximum(m, S.max(1))
                alpha = np.exp2(m - mn).astype(np.float32)
                P = np.exp2(S - mn[:, None]).astype(np.float32)
                l = (l * alpha + P.sum(1, dtype=np.float32)).astype(np.float32)
                acc = (acc * alpha[:, None] + P.astype(np.float16).astype(np.float32) @ V[j0:j1]).astype(np.float32)
                m = mn
            o[b, h, i0:i1] = (acc / l[:, None]).astype(np.float16)
do = rng.standard_normal((B, H, N, D)).astype(np.float16)
dq, dk, dv = np.zeros_like(o), np.zeros_like(o), np.zeros_like(o)
for b in range(B):
    for h in range(H):
        Q, K, V = q[b, h].astype(np.float32), k[b, h].astype(np.float32), v[b, h].astype(np.float32)
        dO, O = do[b, h].astype(np.float32), o[b, h].astype(np.float32)
        S = (Q @ K.T).astype(np.float32) * c
        S = np.where(np.arange(N)[None, :] <= np.arange(N)[:, None], S, np.float32(-np.inf)).astype(np.float32)
        mx = S.max(1)
        lse = (mx + np.log2(np.exp2(S - mx[:, None]).sum(1, dtype=np.float32))).astype(np.float32)
        P = np.exp2(S - lse[:, None]).astype(np.float32)
        Dd = (dO * O).sum(1, dtype=np.float32)
        dv[b, h] = (P.astype(np.float16).astype(np.float32).T @ dO).astype(np.float16)
        dS = (P * ((dO @ V.T).astype(np.float32) - Dd[:, None])).astype(np.float16).astype(np.float32)
        dq[b, h] = ((dS @ K) * s).astype(np.float16)
        dk[b, h] = ((dS.T @ Q) * s).astype(np.float16)
with open(os.path.join(outdir, "fa_in.safetensors"), "wb") as f:
    mr.write_safetensors(f, {"q": q, "k": k, "v": v, "do": do})
with open(os.path.join(outdir, "fa_c.safetensors"), "wb") as f:
    mr.write_safetensors(f, {"o": o, "dq": dq, "dk": dk, "dv": dv})
