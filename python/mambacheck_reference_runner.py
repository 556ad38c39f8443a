#!/usr/bin/env python3
"""A correct numpy kernel behind the runner template, with optional planted bugs (for MambaCheck's tests).

    python3 mambacheck_reference_runner.py [--bug NAME] [runner arguments…]

The kernel is the chunked form of docs/MATH.md §3.3 (chunk C = 64, Float32 arithmetic; outputs and
states stored in the inputs' dtype) for the scores with a feature map, and the quadratic form with a
running maximum (§3.1, §3.4) for the exponential score. The entry "recurrent" runs the recurrence of
§3.2 token by token. Needs numpy only.

Planted bugs (--bug), each a classic kernel mistake that one property of the suite must catch:

  scale             the score scale is 1.25·s (docs/MATH.md §1.2: invisible under sum normalisation
                    for the homogeneous scores, so use an un-normalised core such as mamba2)
  decay-off-by-one  Γ_ij = exp(a_j + … + a_i): each key decays by its own step too
  noncausal         the mask lets token i see token i+1 inside a chunk
  drop-last-chunk   a last, partial chunk is neither output (zeros) nor added to the state
  handoff           the initial state enters the outputs undecayed (e^{L_i} dropped; docs/MATH.md §1.2)
  nondeterministic  one random element of o moves by a random 1…65536 units in the last place, like a race
  grad-decay        gradients: da is returned as dL (the prefix sums' gradient), its reverse cumulative
                    sum over later tokens forgotten
  varlen-leak       packed batches (cu_seqlens): a sequence starts from the previous sequence's final state
                    instead of its own initial state (the state is not reset at the boundary)

Gradients: when the inputs hold `do` (campaigns made with --grads), the linear and squared scores
without an initial state also return dq, dk, dv (and da for decayed cores), from the quadratic form's
backward pass evaluated in Float64 and rounded once to the inputs' dtype. (The same pass in Float32,
FLA's delta form dw = (do·v - do·y)/D, exceeded the dk allowance by 1.03x on 13 of 1600 elements of
the quick level's case c004, seed 1: a finding about that form's accuracy or the gradient verdict's
calibration, recorded in BENCHMARKS.md, not something this test fixture should hide or model.)

Packed inputs (`cu_seqlens` [S+1]; q, k, v, a [1, H, T, …]; initial_state [S, H, F, dv]) are run sequence
by sequence, each from its own initial state; final_state is [S, H, F, dv] (an empty sequence hands its
initial state through).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mambacheck_runner  # noqa: E402

BUGS = ["scale", "decay-off-by-one", "noncausal", "drop-last-chunk", "handoff", "nondeterministic", "grad-decay",
        "varlen-leak"]
CHUNK = 64


def feature_map(score, x):
    """φ of docs/MATH.md §3.2 and §4 on the last axis."""
    if score == "linear":
        return x
    if score == "relu-linear":
        return np.maximum(x, 0)
    d = x.shape[-1]
    cols = []
    for a in range(d):
        for b in range(a, d):
            w = np.float32(1.0) if a == b else np.float32(np.sqrt(2.0))
            cols.append(w * x[..., a] * x[..., b])
    return np.stack(cols, axis=-1).astype(np.float32)


def score_fn(score, x):
    if score == "squared":
        return x * x
    return x


def parse_core(name):
    score, decay, norm = name.rsplit("-", 2)
    return score, decay == "decay", norm


def per_step_decay(inputs, shape):
    if "a" in inputs:
        return inputs["a"].astype(np.float32)
    if "a_cumsum" in inputs:
        l = inputs["a_cumsum"].astype(np.float32)
        return np.diff(l, axis=-1, prepend=np.float32(0)).astype(np.float32)
    return np.zeros(shape, np.float32)


def chunked_sequence(score, norm, s, q, k, v, a, s0, z0, bug):
    """One (batch, head) sequence in the chunked form; returns o, S, z."""
    n, dk = q.shape
    c_q = np.float32(s * s if score == "squared" else s)
    if score == "relu-linear":
        q, k = np.maximum(q, 0), np.maximum(k, 0)
    o = np.zeros((n, v.shape[1]), np.float32)
    state, z = s0.copy(), z0.copy()
    for c0 in range(0, n, CHUNK):
        c1 = min(c0 + CHUNK, n)
        if bug == "drop-last-chunk" and c1 - c0 < CHUNK and c0 + CHUNK > n:
            break
        qc, kc, vc = q[c0:c1], k[c0:c1], v[c0:c1]
        l = np.cumsum(a[c0:c1], dtype=np.float32)
        m = c1 - c0
        i, j = np.arange(m)[:, None], np.arange(m)[None, :]
        mask = j <= (i + 1 if bug == "noncausal" else i)
        expo = l[:, None] - l[None, :]
        if bug == "decay-off-by-one":
            expo = expo + a[c0:c1][None, :]
        gamma = np.exp(np.where(mask, expo, -np.inf)).astype(np.float32)
        w = score_fn(score, np.float32(s) * (qc @ kc.T)) * gamma
        if score == "relu-linear":
            w = w  # q, k already rectified
        fq = feature_map(score, qc)
        fk = feature_map(score, kc)
        decay_in = np.exp(l)[:, None].astype(np.float32)
        if bug == "handoff" and c0 == 0:
            decay_in = np.ones_like(decay_in)
        num = w @ vc + c_q * decay_in * (fq @ state)
        if norm == "sum":
            den = w.sum(axis=1) + c_q * decay_in[:, 0] * (fq @ z)
            o[c0:c1] = num / den[:, None]
        else:
            o[c0:c1] = num
        tail = np.exp(l[-1] - l)[:, None].astype(np.float32)
        state = np.float32(np.exp(l[-1])) * state + (tail * fk).T @ vc
        z = np.float32(np.exp(l[-1])) * z + (tail * fk).sum(axis=0)
    return o, state, z


def recurrent_sequence(score, norm, s, q, k, v, a, s0, z0):
    """One sequence in the recurrent form (docs/MATH.md §3.2)."""
    c_q = np.float32(s * s if score == "squared" else s)
    fq, fk = feature_map(score, q), feature_map(score, k)
    state, z = s0.copy(), z0.copy()
    o = np.zeros((q.shape[0], v.shape[1]), np.float32)
    for t in range(q.shape[0]):
        alpha = np.float32(np.exp(a[t]))
        state = alpha * state + np.outer(fk[t], v[t])
        z = alpha * z + fk[t]
        o[t] = (fq[t] @ state) / (fq[t] @ z) if norm == "sum" else c_q * (fq[t] @ state)
    return o, state, z


def exponential_sequence(s, q, k, v, a, bug):
    """Quadratic form with the running maximum, for the exponential score (no state)."""
    n = q.shape[0]
    l = np.cumsum(a, dtype=np.float32)
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    mask = j <= (i + 1 if bug == "noncausal" else i)
    lam = np.float32(s) * (q @ k.T) + (l[:, None] - l[None, :])
    lam = np.where(mask, lam, -np.inf)
    p = np.exp(lam - lam.max(axis=1, keepdims=True)).astype(np.float32)
    return (p @ v) / p.sum(axis=1, keepdims=True)


def quadratic_backward(score, norm, s, q, k, v, a, g, bug):
    """dq, dk, dv, da of one sequence from zero state, by the quadratic form (Float64).

    w_ij = f(x_ij) Γ_ij on j <= i, x = s q_i·k_j, Γ_ij = exp(L_i - L_j); y_i = Σ_j w_ij v_j (/ D_i = Σ_j w_ij).
    With dw_ij = ∂ℓ/∂w_ij: dv_j = Σ_i (w_ij/D_i) g_i; dx = dw f'(x) Γ; dq = s dx k, dk = s dxᵀ q;
    ∂ℓ/∂L_i = Σ_j dw_ij w_ij - Σ_j dw_ji w_ji, and da_t = Σ_{i >= t} ∂ℓ/∂L_i (L_i = Σ_{t <= i} a_t).
    """
    q, k, v, a, g = (x.astype(np.float64) for x in (q, k, v, a, g))
    n = q.shape[0]
    l = np.cumsum(a)
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    gamma = np.exp(np.where(j <= i, l[:, None] - l[None, :], -np.inf))
    x = s * (q @ k.T)
    f, fp = (x * x, 2 * x) if score == "squared" else (x, np.ones_like(x))
    w = f * gamma
    if norm == "sum":
        d = w.sum(axis=1)
        y = (w @ v) / d[:, None]
        dw = (g @ v.T - (g * y).sum(axis=1)[:, None]) / d[:, None]
        dv = (w / d[:, None]).T @ g
    else:
        dw = g @ v.T
        dv = w.T @ g
    dx = dw * fp * gamma
    dq = s * (dx @ k)
    dk = s * (dx.T @ q)
    t = dw * w
    dl = t.sum(axis=1) - t.sum(axis=0)
    da = dl if bug == "grad-decay" else np.cumsum(dl[::-1])[::-1]
    return dq, dk, dv, da


def make_kernel(bug):
    def kernel(inputs, info):
        core = info.get("core") or os.environ.get("MAMBACHECK_CORE")
        if core is None:
            raise SystemExit("error: the reference runner needs --core NAME")
        score, has_decay, norm = parse_core(core)
        q, k, v = (inputs[n].astype(np.float32) for n in ("q", "k", "v"))
        b, h, n, dk = q.shape
        dv = v.shape[-1]
        s = info.get("scale") or 1.0 / np.sqrt(dk)
        if bug == "scale":
            s = 1.25 * s
        a = per_step_decay(inputs, (b, h, n)) if has_decay else np.zeros((b, h, n), np.float32)
        dtype = inputs["q"].dtype

        def stored(x):
            """Rounded once to the inputs' format (bfloat16 inputs arrive as exact float32 arrays)."""
            if info.get("dtypes", {}).get("q") == "bfloat16":
                return mambacheck_runner.bfloat16(x)
            return x.astype(dtype)
        cu = inputs.get("cu_seqlens")
        # Segments (batch row, first token, end token, state index): one per sequence.
        if cu is None:
            segments = [(bi, 0, n, bi) for bi in range(b)]
        else:
            cu = cu.astype(np.int64)
            segments = [(0, int(cu[si]), int(cu[si + 1]), si) for si in range(len(cu) - 1)]
        states = len(segments)
        o = np.zeros((b, h, n, dv), np.float32)
        if score == "exponential":
            for bi, t0, t1, _ in segments:
                for hi in range(h):
                    if t1 > t0:
                        o[bi, hi, t0:t1] = exponential_sequence(s, q[bi, hi, t0:t1], k[bi, hi, t0:t1],
                                                                v[bi, hi, t0:t1], a[bi, hi, t0:t1], bug)
            return {"o": stored(o)}
        f = dk if score != "squared" else dk * (dk + 1) // 2
        s0 = inputs.get("initial_state", np.zeros((states, h, f, dv))).astype(np.float32)
        z0 = inputs.get("initial_state_z", np.zeros((states, h, f))).astype(np.float32)
        fs = np.zeros((states, h, f, dv), np.float32)
        fz = np.zeros((states, h, f), np.float32)
        for hi in range(h):
            carried = None
            for bi, t0, t1, si in segments:
                start = (s0[si, hi], z0[si, hi])
                if bug == "varlen-leak" and cu is not None and carried is not None:
                    start = carried
                if t1 == t0:
                    fs[si, hi], fz[si, hi] = start
                else:
                    args = (score, norm, s, q[bi, hi, t0:t1], k[bi, hi, t0:t1], v[bi, hi, t0:t1], a[bi, hi, t0:t1],
                            start[0], start[1])
                    if info.get("entry") == "recurrent":
                        o[bi, hi, t0:t1], fs[si, hi], fz[si, hi] = recurrent_sequence(*args)
                    else:
                        o[bi, hi, t0:t1], fs[si, hi], fz[si, hi] = chunked_sequence(*args, bug)
                carried = (fs[si, hi], fz[si, hi])
        grads = {}
        if "do" in inputs and score in ("linear", "squared") and "initial_state" not in inputs:
            g = inputs["do"].astype(np.float32)
            grads = {"dq": np.zeros_like(q), "dk": np.zeros_like(k), "dv": np.zeros_like(v)}
            if has_decay:
                grads["da"] = np.zeros_like(a)
            for hi in range(h):
                for bi, t0, t1, _ in segments:
                    if t1 == t0:
                        continue
                    dq, dk_, dv_, da = quadratic_backward(score, norm, s, q[bi, hi, t0:t1], k[bi, hi, t0:t1],
                                                          v[bi, hi, t0:t1], a[bi, hi, t0:t1], g[bi, hi, t0:t1], bug)
                    grads["dq"][bi, hi, t0:t1], grads["dk"][bi, hi, t0:t1], grads["dv"][bi, hi, t0:t1] = dq, dk_, dv_
                    if has_decay:
                        grads["da"][bi, hi, t0:t1] = da
        if bug == "nondeterministic":
            bits = o.reshape(-1).view(np.int32)
            idx = int.from_bytes(os.urandom(4), "little") % bits.size
            bits[idx] += 1 + int.from_bytes(os.urandom(2), "little")
        out = {"o": stored(o), "final_state": fs}
        if norm == "sum":
            out["final_state_z"] = fz
        out.update({name: stored(x) for name, x in grads.items()})
        return out
    return kernel


if __name__ == "__main__":
    argv = sys.argv[1:]
    bug = None
    if "--bug" in argv:
        i = argv.index("--bug")
        bug = argv[i + 1]
        del argv[i:i + 2]
        if bug not in BUGS:
            raise SystemExit(f"error: --bug must be one of {', '.join(BUGS)}")
    sys.exit(mambacheck_runner.main(argv, kernel=make_kernel(bug)))
