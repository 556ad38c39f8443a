#!/usr/bin/env python3
"""numpy peer of `mambacheck bench --variant 2mamba --form chunked --mode float32`.

The same algorithm as Sources/MambaKernels/Fast/Chunked.swift (docs/MATH.md §3)
for the 2Mamba core (squared score, decay, sum normalisation), Float32, one
BLAS thread (OPENBLAS_NUM_THREADS=1 is set before numpy loads): per chunk of C
tokens, X = Q_c K_cᵀ; W = (s·X)² ⊙ exp(ℓ_i − ℓ_j) on j ≤ i; out = W·[V_c | 1];
out += (s²·exp(ℓ_i)·φ(q_i))·[S | z]; [S | z] ← exp(ℓ_last)·[S | z] +
φ(K_c)ᵀ·(exp(ℓ_last − ℓ_j)·[v_j | 1]); o = num / den. φ is the packed
second-order map (F = dk(dk+1)/2, √2 on cross terms).

Usage: python3 Benchmarks/scripts/numpy_chunked_peer.py [N] [dk] [C] [runs]
Prints the median wall and thread CPU time, and numpy's single-thread sgemm GFLOP/s at 1024³.
"""
import os
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"
import sys
import time
import numpy as np


def features(x, iu, w):
    return x[:, iu[0]] * x[:, iu[1]] * w


def chunked(q, k, v, a, s, chunk):
    n, dk = q.shape
    dv = v.shape[1]
    iu = np.triu_indices(dk)
    w = np.where(iu[0] == iu[1], 1.0, np.sqrt(2.0)).astype(np.float32)
    f = len(iu[0])
    vals = np.concatenate([v, np.ones((n, 1), np.float32)], axis=1)
    state = np.zeros((f, dv + 1), np.float32)
    out = np.empty((n, dv + 1), np.float32)
    c2 = np.float32(s * s)
    for c0 in range(0, n, chunk):
        cc = min(chunk, n - c0)
        qc, kc, vc = q[c0:c0 + cc], k[c0:c0 + cc], vals[c0:c0 + cc]
        ell = np.cumsum(a[c0:c0 + cc], dtype=np.float32)
        x = qc @ kc.T
        wts = np.tril((x * np.float32(s)) ** 2 * np.exp(ell[:, None] - ell[None, :]))
        o = wts @ vc
        if c0 > 0:
            o += (features(qc, iu, w) * (c2 * np.exp(ell))[:, None]) @ state
        scaled = vc * np.exp(ell[-1] - ell)[:, None]
        state = np.float32(np.exp(ell[-1])) * state + features(kc, iu, w).T @ scaled
        out[c0:c0 + cc] = o
    return out[:, :dv] / out[:, dv:]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 16384
    dk = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    chunk = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    rng = np.random.default_rng(42)
    q = rng.standard_normal((n, dk), dtype=np.float32)
    k = rng.standard_normal((n, dk), dtype=np.float32)
    v = rng.standard_normal((n, dk), dtype=np.float32)
    a = -rng.uniform(0.001, 0.1, n).astype(np.float32)
    s = 1.0 / np.sqrt(dk)
    chunked(q, k, v, a, s, chunk)
    times, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.thread_time()
        chunked(q, k, v, a, s, chunk)
        times.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    times.sort()
    cpu.sort()
    m = 1024
    x = rng.standard_normal((m, m), dtype=np.float32)
    x @ x
    g = []
    for _ in range(3):
        c0 = time.thread_time()
        x @ x
        g.append(2 * m ** 3 / (time.thread_time() - c0) / 1e9)
    print(f"numpy {np.__version__} chunked 2mamba float32 N={n} dk=dv={dk} C={chunk}: "
          f"median {times[len(times) // 2] * 1e3:.1f} ms wall, {cpu[len(cpu) // 2] * 1e3:.1f} ms CPU "
          f"(CPU runs {', '.join(f'{t * 1e3:.0f}' for t in cpu)}); "
          f"numpy sgemm 1024^3 one thread best {max(g):.1f} GFLOP/s (CPU time)")


if __name__ == "__main__":
    main()
