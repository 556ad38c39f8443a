"""A tiled Triton kernel for the 2Mamba core (`squared-decay-sum`, docs/MATH.md §1, §3.4).

Written from docs/MATH.md alone, in the habits of the paper's kernels: it receives prefix sums
`a_cumsum`, works in base 2 (`exp2` of prefix sums rescaled by 1/ln 2 *before* the difference),
and runs `tl.dot` on the input dtype (fp32 → TF32 unless `fp32_dots="ieee"`; 16-bit operands
accumulate in fp32, the weights P are rounded to the value dtype before the second product).

    y_i = Σ_{j≤i} (s q_i·k_j)² 2^{(L_i − L_j)/ln 2} v_j  /  Σ_{j≤i} (s q_i·k_j)² 2^{(L_i − L_j)/ln 2}

`bug` plants one-line bugs for calibration (0 = correct):
1 strict causal mask (diagonal dropped), 2 key-side decay off by one (L_{j-1} for L_j),
3 an epsilon 1e-5 added to the denominator, 4 exp2 of natural-log prefix sums (no 1/ln 2).
"""
import torch
import triton
import triton.language as tl

RCP_LN2 = tl.constexpr(1.4426950408889634)


@triton.jit
def _twomamba_fwd(Q, K, V, LC, O, N, scale,
                  DK: tl.constexpr, DV: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr,
                  IEEE: tl.constexpr, BUG: tl.constexpr):
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    offs_m = pid_m * BM + tl.arange(0, BM)
    offs_k = tl.arange(0, DK)
    offs_v = tl.arange(0, DV)
    m_ok = offs_m < N
    q = tl.load(Q + bh * N * DK + offs_m[:, None] * DK + offs_k[None, :], mask=m_ok[:, None], other=0.0)
    if BUG == 4:
        lq = tl.load(LC + bh * N + offs_m, mask=m_ok, other=0.0)
    else:
        lq = tl.load(LC + bh * N + offs_m, mask=m_ok, other=0.0) * RCP_LN2
    acc = tl.zeros([BM, DV], dtype=tl.float32)
    den = tl.zeros([BM], dtype=tl.float32)
    hi = tl.minimum((pid_m + 1) * BM, N)
    for start_n in range(0, hi, BN):
        offs_n = start_n + tl.arange(0, BN)
        n_ok = offs_n < N
        k = tl.load(K + bh * N * DK + offs_n[:, None] * DK + offs_k[None, :], mask=n_ok[:, None], other=0.0)
        v = tl.load(V + bh * N * DV + offs_n[:, None] * DV + offs_v[None, :], mask=n_ok[:, None], other=0.0)
        if BUG == 2:
            lk = tl.load(LC + bh * N + offs_n - 1, mask=n_ok & (offs_n > 0), other=0.0) * RCP_LN2
        elif BUG == 4:
            lk = tl.load(LC + bh * N + offs_n, mask=n_ok, other=0.0)
        else:
            lk = tl.load(LC + bh * N + offs_n, mask=n_ok, other=0.0) * RCP_LN2
        if IEEE:
            s = tl.dot(q, tl.trans(k), input_precision="ieee") * scale
        else:
            s = tl.dot(q, tl.trans(k)) * scale
        if BUG == 1:
            causal = (offs_m[:, None] > offs_n[None, :]) & n_ok[None, :]
        else:
            causal = (offs_m[:, None] >= offs_n[None, :]) & n_ok[None, :]
        # The exponent is masked before exp2: L_i − L_j > 0 above the diagonal could overflow.
        expo = tl.where(causal, lq[:, None] - lk[None, :], float("-inf"))
        w = s * s * tl.exp2(expo)
        den += tl.sum(w, 1)
        if IEEE:
            acc += tl.dot(w.to(v.dtype), v, input_precision="ieee")
        else:
            acc += tl.dot(w.to(v.dtype), v)
    if BUG == 3:
        den = den + 1e-5
    o = acc / den[:, None]
    tl.store(O + bh * N * DV + offs_m[:, None] * DV + offs_v[None, :], o.to(O.dtype.element_ty),
             mask=m_ok[:, None])


def twomamba_forward(q, k, v, a_cumsum, scale=None, fp32_dots="tf32", bug=0):
    """q, k: [B, H, N, dk]; v: [B, H, N, dv]; a_cumsum: [B, H, N] float32. Returns o like v."""
    B, H, N, DK = q.shape
    DV = v.shape[-1]
    if scale is None:
        scale = DK ** -0.5
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    lc = a_cumsum.to(torch.float32).contiguous()
    o = torch.empty_like(v)
    BM, BN = 64, 32
    grid = (triton.cdiv(N, BM), B * H)
    _twomamba_fwd[grid](q, k, v, lc, o, N, scale, DK=DK, DV=DV, BM=BM, BN=BN,
                        IEEE=(fp32_dots == "ieee" and q.dtype == torch.float32), BUG=bug)
    return o
