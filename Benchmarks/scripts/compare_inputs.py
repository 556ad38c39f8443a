#!/usr/bin/env python3
"""Inputs and a candidate for timing `mambacheck compare` (BENCHMARKS.md, "compare at N = 4096").

Standard normal q, k, v (float32), a ~ -U(0.001, 0.1), one head, [B, H, N, d]
layout; the candidate o comes from the numpy float32 chunked peer
(numpy_chunked_peer.py, C = 64). s = 1/sqrt(dk) as the oracle's default.

Usage: python3 Benchmarks/scripts/compare_inputs.py OUTDIR [N] [dk] [seed]
Writes OUTDIR/inputs.npz and OUTDIR/cand.npz.
"""
import os
import sys
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numpy_chunked_peer import chunked  # noqa: E402


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 4096
    dk = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 42
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((n, dk), dtype=np.float32)
    k = rng.standard_normal((n, dk), dtype=np.float32)
    v = rng.standard_normal((n, dk), dtype=np.float32)
    a = -rng.uniform(0.001, 0.1, n).astype(np.float32)
    o = chunked(q, k, v, a, 1.0 / np.sqrt(dk), 64).astype(np.float32)
    os.makedirs(out, exist_ok=True)
    np.savez(os.path.join(out, "inputs.npz"), q=q[None, None], k=k[None, None], v=v[None, None], a=a[None, None])
    np.savez(os.path.join(out, "cand.npz"), o=o[None, None])


if __name__ == "__main__":
    main()
