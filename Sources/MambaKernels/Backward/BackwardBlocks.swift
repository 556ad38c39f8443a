#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MambaVariants

// Building blocks shared by the backward forms (see `CoreBackward` for the
// mathematics). Every routine follows the forward's precision model: matrix
// products go through `Arithmetic.gemm` (operands stored in the mode's
// operand format, Float32 accumulation; every operation rounded in pure
// float16), elementwise results are rounded with `Arithmetic.op`.

/// Weights and their derivative factors for a block of query–key pairs.
enum PairWeights {
    /// From raw dot products `x` (`rows × cols`, leading dimension `cols`):
    ///
    /// - `p_rj = f(s·x_rj)·exp(li_r − lj_j − m_r)` (exponential score:
    ///   `exp(s·x_rj + li_r − lj_j − m_r)`), the weight shifted by the row's
    ///   log-scale `m_r` (0 when `shift` is nil);
    /// - `d_rj = f'(s·x_rj)·exp(li_r − lj_j − m_r)` (`1·…` linear, `2s·x·…`
    ///   squared, `p` exponential);
    ///
    /// for the causal pairs `j ≤ r + diagonalOffset` (every pair when
    /// `diagonalOffset` is nil), exact zeros elsewhere. `li`/`lj` are the log
    /// decays of rows and columns (nil: no decay), used as `li_r − lj_j`;
    /// `exponents` (`rows × cols`, leading dimension `cols`), when given,
    /// holds the pair exponents `D_rj` themselves (the segment sums of
    /// `DecayExponents`, docs/MATH.md §6) and replaces `li`/`lj`. Decay factors below 2⁻⁶⁰
    /// are flushed as in the forward; a row with `m_r = −∞` (no weight) is zero.
    /// The non-exponential scores go through the forward's `WeightSweep`, so
    /// unshifted weights are bit for bit the forward's.
    static func compute(_ ctx: CoreContext, x: UnsafePointer<Float>, rows: Int, cols: Int, diagonalOffset: Int?,
                        li: UnsafePointer<Float>?, lj: UnsafePointer<Float>?, shift: UnsafePointer<Float>?,
                        exponents: UnsafePointer<Float>? = nil,
                        p: UnsafeMutablePointer<Float>, d: UnsafeMutablePointer<Float>) {
        let a = ctx.arith, s = ctx.scale
        let tmp = a.scratch.buffer(7, Swift.max(cols, 1)), t = a.scratch.buffer(8, Swift.max(cols, 1))
        let diff = a.scratch.buffer(15, Swift.max(cols, 1))
        for r in 0..<rows {
            let cnt = diagonalOffset.map { Swift.max(0, Swift.min(cols, r + $0 + 1)) } ?? cols
            let xr = x + r * cols, pr = p + r * cols, dr = d + r * cols
            (pr + cnt).update(repeating: 0, count: cols - cnt)
            (dr + cnt).update(repeating: 0, count: cols - cnt)
            guard cnt > 0 else { continue }
            let m: Float = shift?[r] ?? 0
            if ctx.isExponential && m == -.infinity {
                pr.update(repeating: 0, count: cnt); dr.update(repeating: 0, count: cnt)
                continue
            }
            // The pair exponents D_rj of this row: given (segment sums), or
            // li_r − lj_j (one rounding in the working format).
            var er: UnsafePointer<Float>? = nil
            if let exponents {
                er = exponents + r * cols
            } else if let lj {
                let lir: Float = li?[r] ?? 0
                for j in 0..<cnt { diff[j] = lir - lj[j] }
                er = UnsafePointer(diff)
            }
            if ctx.isExponential {
                if a.pureHalf {
                    // Each operation rounded to binary16, in the forward's order.
                    for j in 0..<cnt { t[j] = s * xr[j] }
                    a.op(t, cnt)
                    if let er {
                        tmp.update(from: er, count: cnt)
                    } else {
                        tmp.update(repeating: 0, count: cnt)
                    }
                    a.op(tmp, cnt)
                    for j in 0..<cnt { tmp[j] = t[j] + tmp[j] }
                    a.op(tmp, cnt)
                    for j in 0..<cnt { tmp[j] -= m }
                    a.op(tmp, cnt)
                    for j in 0..<cnt { pr[j] = exp(tmp[j]) }
                    a.op(pr, cnt)
                } else if let er {
                    for j in 0..<cnt { pr[j] = flushed(exp(s * xr[j] + er[j] - m)) }
                } else {
                    for j in 0..<cnt { pr[j] = flushed(exp(s * xr[j] - m)) }
                }
                dr.update(from: pr, count: cnt)
                continue
            }
            // The forward's weight sweep, with the derivative factors.
            let hasFactor = WeightSweep.factors(ctx, exponents: er, shift: shift != nil ? m : nil, count: cnt, into: tmp)
            WeightSweep.apply(ctx, x: xr, count: cnt, factors: hasFactor ? UnsafePointer(tmp) : nil, p: pr, d: dr)
        }
    }
}

/// The backward products of one block of pairs (docs/MATH.md §5 with the augmented
/// upstream gradient of `CoreBackward`).
enum PairBackward {
    /// With `p`, `d` from `PairWeights` (`rows × cols`), the augmented upstream
    /// gradient `dOt` of the rows (`rows × ldv`), the augmented values of the
    /// columns (`cols × ldv`), `q` (`rows × dk`) and `k` (`cols × dk`):
    ///
    /// - `dvOut[cols × dv] += pᵀ·dOt[:, :dv]`;
    /// - `g = dOt·valuesᵀ` (`dW`); `E = p ⊙ g`: `rowSum[r] += Σ_j E_rj`,
    ///   `colSum[j] += Σ_r E_rj` (each when non-nil);
    /// - `dX = d ⊙ g` (in `d`); `dq[rows × dk] += s·dX·k`, `dkOut[cols × dk] += s·dXᵀ·q`.
    ///
    /// `g` is scratch of `rows·cols`. Five matrix products; the three
    /// accumulations are in the working format.
    static func accumulate(_ ctx: CoreContext, p: UnsafeMutablePointer<Float>, d: UnsafeMutablePointer<Float>,
                           rows: Int, cols: Int, dOt: UnsafePointer<Float>, values: UnsafePointer<Float>,
                           q: UnsafePointer<Float>, k: UnsafePointer<Float>, dk: Int, dv: Int,
                           g: UnsafeMutablePointer<Float>, dq: UnsafeMutablePointer<Float>,
                           dkOut: UnsafeMutablePointer<Float>, dvOut: UnsafeMutablePointer<Float>,
                           rowSum: UnsafeMutablePointer<Float>?, colSum: UnsafeMutablePointer<Float>?) {
        guard rows > 0, cols > 0 else { return }
        let a = ctx.arith, ldv = ctx.ldv(dv), count = rows * cols
        a.gemm(transA: true, transB: false, m: cols, n: dv, k: rows, a: p, lda: cols, b: dOt, ldb: ldv,
               beta: 1, c: dvOut, ldc: dv)
        a.gemm(transA: false, transB: true, m: rows, n: cols, k: ldv, a: dOt, lda: ldv, b: values, ldb: ldv,
               beta: 0, c: g, ldc: cols)
        if rowSum != nil || colSum != nil {
            if a.pureHalf {
                let e = a.scratch.buffer(7, count)
                for i in 0..<count { e[i] = p[i] * g[i] }
                a.op(e, count)
                for r in 0..<rows {
                    let er = e + r * cols
                    if let rowSum {
                        var acc = rowSum[r]
                        for j in 0..<cols { acc = a.op(acc + er[j]) }
                        rowSum[r] = acc
                    }
                    if let colSum {
                        for j in 0..<cols { colSum[j] += er[j] }
                        a.op(colSum, cols)
                    }
                }
            } else {
                for r in 0..<rows {
                    let pr = p + r * cols, gr = g + r * cols
                    if let colSum { for j in 0..<cols { colSum[j] += pr[j] * gr[j] } }
                    if let rowSum {
                        var acc: Float = 0
                        for j in 0..<cols { acc += pr[j] * gr[j] }
                        rowSum[r] += acc
                    }
                }
            }
        }
        for i in 0..<count { d[i] *= g[i] }
        a.op(d, count)
        a.gemm(transA: false, transB: false, m: rows, n: dk, k: cols, alpha: ctx.scale, a: d, lda: cols,
               b: k, ldb: dk, beta: 1, c: dq, ldc: dk)
        a.gemm(transA: true, transB: false, m: cols, n: dk, k: rows, alpha: ctx.scale, a: d, lda: cols,
               b: q, ldb: dk, beta: 1, c: dkOut, ldc: dk)
    }
}

/// The vector–Jacobian product of the feature map `φ` (docs/MATH.md §4).
enum FeatureGradient {
    /// `out[r, :] += rowScale_r · J_φ(x_r)ᵀ g[:, r]` for `rows` rows of `x`
    /// (`rows × dk`), with the feature cotangents transposed (`gT` is
    /// `F × rows`, leading dimension `rows`, the layout of `Features.columns`),
    /// so every pair of the second-order map is one vector operation over the
    /// rows. First order: `J = I`. Packed φ₂: `∂φ_(a,a)/∂x_a = 2x_a`,
    /// `∂φ_(a,b)/∂x_a = √2·x_b`, `∂φ_(a,b)/∂x_b = √2·x_a` (√2 in the working
    /// format, as the forward's). Full `vec(x xᵀ)`: `∂φ_(a,b)/∂x_a = x_b`,
    /// `∂φ_(a,b)/∂x_b = x_a`. `rowScale` nil means 1.
    static func accumulate(_ ctx: CoreContext, x: UnsafePointer<Float>, rows: Int, dk: Int,
                           gT: UnsafePointer<Float>, rowScale: UnsafePointer<Float>?,
                           out: UnsafeMutablePointer<Float>) {
        guard rows > 0 else { return }
        let a = ctx.arith
        let xT = a.scratch.buffer(7, dk * rows), acc = a.scratch.buffer(8, dk * rows)
        let u = a.scratch.buffer(9, rows)
        for r in 0..<rows { for i in 0..<dk { xT[i * rows + r] = x[r * dk + i] } }
        let half = a.pureHalf
        /// `acc[dst] += c·g·x[src]` over the rows (rounded per operation in pure float16).
        func add(_ dst: Int, _ g: UnsafePointer<Float>, _ src: Int, _ c: Float) {
            let o = acc + dst * rows, xs = xT + src * rows
            if half {
                if c == 1 {
                    for r in 0..<rows { u[r] = g[r] * xs[r] }
                } else {
                    for r in 0..<rows { u[r] = c * g[r] }
                    a.op(u, rows)
                    for r in 0..<rows { u[r] *= xs[r] }
                }
                a.op(u, rows)
                for r in 0..<rows { o[r] += u[r] }
                a.op(o, rows)
            } else {
                for r in 0..<rows { o[r] += c * g[r] * xs[r] }
            }
        }
        switch ctx.spec.score {
        case .linear, .reluLinear:
            acc.update(from: gT, count: dk * rows)
        case .squared:
            acc.update(repeating: 0, count: dk * rows)
            if !half && !ctx.options.fullSecondOrderState {
                // Float32 fast path: √2 folded into a scaled copy of x, two
                // fused updates per pair (the same products, rounded once each).
                let xs2 = a.scratch.buffer(12, dk * rows)
                let sqrt2 = Float(2.0.squareRoot())
                for e in 0..<(dk * rows) { xs2[e] = sqrt2 * xT[e] }
                var idx = 0
                for i in 0..<dk {
                    let oi = acc + i * rows, xi = xT + i * rows, xi2 = xs2 + i * rows
                    let gd = gT + idx * rows
                    for r in 0..<rows { oi[r] += 2 * gd[r] * xi[r] }
                    idx += 1
                    for j in (i + 1)..<Swift.max(dk, i + 1) {
                        let g = gT + idx * rows, oj = acc + j * rows, xj2 = xs2 + j * rows
                        for r in 0..<rows { oi[r] += g[r] * xj2[r]; oj[r] += g[r] * xi2[r] }
                        idx += 1
                    }
                }
            } else if ctx.options.fullSecondOrderState {
                for i in 0..<dk {
                    for j in 0..<dk {
                        let g = gT + (i * dk + j) * rows
                        add(i, g, j, 1)
                        add(j, g, i, 1)
                    }
                }
            } else {
                let sqrt2 = a.op(Float(2.0.squareRoot()))
                var idx = 0
                for i in 0..<dk {
                    add(i, gT + idx * rows, i, 2)
                    idx += 1
                    for j in (i + 1)..<Swift.max(dk, i + 1) {
                        let g = gT + idx * rows
                        add(i, g, j, sqrt2)
                        add(j, g, i, sqrt2)
                        idx += 1
                    }
                }
            }
        case .exponential:
            preconditionFailure("the exponential score has no feature map")
        }
        for r in 0..<rows {
            let sc: Float = rowScale?[r] ?? 1
            let o = out + r * dk
            if half {
                for i in 0..<dk { o[i] = a.op(o[i] + a.op(sc * acc[i * rows + r])) }
            } else {
                for i in 0..<dk { o[i] += sc * acc[i * rows + r] }
            }
        }
    }
}

extension FeatureGradient {
    /// `out[r, :] −= c_r · J_φ(x_r)ᵀ z` for one cotangent `z` (`F` values)
    /// shared by all rows: `J_φ(x)ᵀz = M(z)·x` with the symmetric `dk × dk`
    /// matrix `M_aa = 2z_(a,a)`, `M_ab = M_ba = √2·z_(a,b)` (packed φ₂;
    /// `z_(a,b) + z_(b,a)` for the full map; `J = I` first order), so all rows
    /// are one `rows × dk × dk` GEMM. Not for pure float16.
    static func subtractShared(_ ctx: CoreContext, x: UnsafePointer<Float>, rows: Int, dk: Int,
                               z: UnsafePointer<Float>, coefficient c: UnsafePointer<Float>,
                               out: UnsafeMutablePointer<Float>) {
        guard rows > 0 else { return }
        let a = ctx.arith
        switch ctx.spec.score {
        case .linear, .reluLinear:
            for r in 0..<rows {
                let o = out + r * dk, cr = c[r]
                for i in 0..<dk { o[i] -= cr * z[i] }
            }
            return
        case .squared:
            let m = a.scratch.buffer(13, dk * dk), t = a.scratch.buffer(14, rows * dk)
            if ctx.options.fullSecondOrderState {
                for i in 0..<dk { for j in 0..<dk { m[i * dk + j] = z[i * dk + j] + z[j * dk + i] } }
            } else {
                let sqrt2 = Float(2.0.squareRoot())
                var idx = 0
                for i in 0..<dk {
                    m[i * dk + i] = 2 * z[idx]
                    idx += 1
                    for j in (i + 1)..<Swift.max(dk, i + 1) {
                        let v = sqrt2 * z[idx]
                        m[i * dk + j] = v; m[j * dk + i] = v
                        idx += 1
                    }
                }
            }
            a.gemm(transA: false, transB: false, m: rows, n: dk, k: dk, a: x, lda: dk, b: m, ldb: dk,
                   beta: 0, c: t, ldc: dk)
            for r in 0..<rows {
                let o = out + r * dk, tr = t + r * dk, cr = c[r]
                for i in 0..<dk { o[i] -= cr * tr[i] }
            }
        case .exponential:
            preconditionFailure("the exponential score has no feature map")
        }
    }
}

/// The state terms of a block of query rows: the forward adds
/// `Φ̃_rᵀ·S̃` to the augmented output of row `r`, with the scaled features
/// `Φ̃_r = rowScale_r·φ(q_r)` and a state `S̃` (`F × ldv`).
enum StateQueryBackward {
    /// `gT = S̃·dOtᵀ` (`F × rows`, the cotangent of `Φ̃`), then `apply`.
    static func accumulate(_ ctx: CoreContext, q: UnsafePointer<Float>, rows: Int, dk: Int, dv: Int,
                           phiT: UnsafePointer<Float>, rowScale: UnsafePointer<Float>?, state: UnsafePointer<Float>,
                           dOt: UnsafePointer<Float>, gT: UnsafeMutablePointer<Float>,
                           dq: UnsafeMutablePointer<Float>, rowSum: UnsafeMutablePointer<Float>?,
                           dState: UnsafeMutablePointer<Float>?, beta: Float) {
        guard rows > 0 else { return }
        let a = ctx.arith, ldv = ctx.ldv(dv), f = ctx.internalFeatures(dk)!
        a.gemm(transA: false, transB: true, m: f, n: rows, k: ldv, a: state, lda: ldv, b: dOt, ldb: ldv,
               beta: 0, c: gT, ldc: rows)
        apply(ctx, q: q, rows: rows, dk: dk, dv: dv, phiT: phiT, rowScale: rowScale, gT: gT, dOt: dOt, dq: dq,
              rowSum: rowSum, dState: dState, beta: beta)
    }

    /// Given the cotangent `gT` of `Φ̃` (`F × rows`):
    /// `dq[r] += rowScale_r·J_φ(q_r)ᵀ g_r`; `rowSum[r] += Φ̃_r·g_r` (when
    /// non-nil: the state's part of `∂ℓ/∂L_r`); then
    /// `dState ← beta·dState + Φ̃ᵀ·dOt` (`F × ldv`) when `dState` is non-nil.
    static func apply(_ ctx: CoreContext, q: UnsafePointer<Float>, rows: Int, dk: Int, dv: Int,
                      phiT: UnsafePointer<Float>, rowScale: UnsafePointer<Float>?, gT: UnsafePointer<Float>,
                      dOt: UnsafePointer<Float>, dq: UnsafeMutablePointer<Float>, rowSum: UnsafeMutablePointer<Float>?,
                      dState: UnsafeMutablePointer<Float>?, beta: Float) {
        guard rows > 0 else { return }
        let a = ctx.arith, ldv = ctx.ldv(dv), f = ctx.internalFeatures(dk)!
        if let rowSum {
            let e = a.scratch.buffer(9, rows)
            if a.pureHalf {
                for x in 0..<f {
                    for r in 0..<rows { e[r] = phiT[x * rows + r] * gT[x * rows + r] }
                    a.op(e, rows)
                    for r in 0..<rows { rowSum[r] += e[r] }
                    a.op(rowSum, rows)
                }
            } else {
                e.update(repeating: 0, count: rows)
                for x in 0..<f {
                    let pr = phiT + x * rows, gr = gT + x * rows
                    for r in 0..<rows { e[r] += pr[r] * gr[r] }
                }
                for r in 0..<rows { rowSum[r] += e[r] }
            }
        }
        FeatureGradient.accumulate(ctx, x: q, rows: rows, dk: dk, gT: gT, rowScale: rowScale, out: dq)
        if let dState {
            a.gemm(transA: false, transB: false, m: f, n: ldv, k: rows, a: phiT, lda: rows, b: dOt, ldb: ldv,
                   beta: beta, c: dState, ldc: ldv)
        }
    }
}

/// The forward quantities a backward pass needs, from the augmented
/// accumulator `[num | den]`.
enum BackwardForward {
    /// `o = num/den` in the working format, then rounded to the output format
    /// (the stored output a flash-style kernel forms `δ` from); the rows whose
    /// denominator is exactly 0 (their quotient is kept: NaN or ±∞).
    static func outputs(_ ctx: CoreContext, acc: UnsafePointer<Float>, rows: Int, dv: Int)
        -> (o: UnsafeMutablePointer<Float>, zeroRows: [Int]) {
        let ldv = ctx.ldv(dv)
        let o = allocateFloats(rows * dv)
        var zero: [Int] = []
        for i in 0..<rows {
            let src = acc + i * ldv, dst = o + i * dv
            let den = src[dv]
            if den == 0 { zero.append(i) }
            for c in 0..<dv { dst[c] = src[c] / den }
        }
        ctx.arith.op(o, rows * dv)
        ctx.arith.output.round(o, rows * dv)
        return (o, zero)
    }

    /// Step 2 of every backward form, from the forward quantities of `rows`
    /// rows: the accumulator `acc` (`rows × ldv`, in the units of the row
    /// statistics) and the row maxima `m`. Sum normalisation: the output
    /// `o = num/den` (`outputs`) and `dÕ = [dO | −δ]/den`; the exponential
    /// un-normalised score: `dÕ = dO·e^{m_i}`; otherwise `dÕ = dO`
    /// (`Upstream.augmented`). Also the rows with a zero normaliser.
    static func upstream(_ ctx: CoreContext, dO: UnsafePointer<Float>, acc: UnsafePointer<Float>,
                         m: UnsafePointer<Float>, rows: Int, dv: Int) -> (dOt: UnsafeMutablePointer<Float>, zeroRows: [Int]) {
        if ctx.isSum {
            let r = outputs(ctx, acc: acc, rows: rows, dv: dv)
            defer { r.o.deallocate() }
            return (Upstream.augmented(ctx, dO: dO, rows: rows, dv: dv, o: r.o, acc: acc, rowScale: nil), r.zeroRows)
        }
        guard ctx.isExponential else {
            return (Upstream.augmented(ctx, dO: dO, rows: rows, dv: dv, o: nil, acc: nil, rowScale: nil), [])
        }
        // w_ij = exp(λ_ij − m_i)·exp(m_i): the row factor goes to the upstream gradient.
        let factor = allocateFloats(Swift.max(rows, 1))
        defer { factor.deallocate() }
        for i in 0..<rows { factor[i] = ctx.arith.op(exp(m[i])) }
        return (Upstream.augmented(ctx, dO: dO, rows: rows, dv: dv, o: nil, acc: nil, rowScale: factor), [])
    }

    /// Sum normalisation with weights already normalised (`p_ij = exp(λ_ij − lse_i)`,
    /// `KernelOptions.logSumExpBackward`): `dÕ = [dO | −δ]`, `δ_i = o_i·dO_i` from the
    /// output rounded to the output format (`outputs`); also the rows with a zero normaliser.
    static func normalisedUpstream(_ ctx: CoreContext, dO: UnsafePointer<Float>, acc: UnsafePointer<Float>,
                                   rows: Int, dv: Int) -> (dOt: UnsafeMutablePointer<Float>, zeroRows: [Int]) {
        let r = outputs(ctx, acc: acc, rows: rows, dv: dv)
        defer { r.o.deallocate() }
        return (Upstream.augmented(ctx, dO: dO, rows: rows, dv: dv, o: r.o, acc: acc, rowScale: nil, unitDenominator: true),
                r.zeroRows)
    }

    /// The diagnostic for zero normalisers (row indices of the sequence).
    static func zeroNote(_ rows: [Int], of n: Int) -> String {
        "zero normaliser in rows \(Finish.describe(rows, of: n)): their gradients are NaN/Inf (no epsilon)"
    }
}

/// The augmented upstream gradient `dÕ` (`rows × ldv`) of `CoreBackward`.
enum Upstream {
    /// Sum normalisation (`o`, `acc` given): `dÕ_i = [dO_i | −δ_i] / den_i`
    /// with `δ_i = Σ_c o_ic·dO_ic` (summed in order in the working format)
    /// and `den_i = acc[i, dv]` — the denominator in whatever shifted units
    /// the weights of the same rows use (1 with `unitDenominator`: weights
    /// already normalised). Otherwise `dÕ_i = dO_i·rowScale_i`
    /// (`rowScale` nil: 1; the exponential un-normalised core passes
    /// `exp(m_i)` to undo its row shift).
    static func augmented(_ ctx: CoreContext, dO: UnsafePointer<Float>, rows: Int, dv: Int,
                          o: UnsafePointer<Float>?, acc: UnsafePointer<Float>?,
                          rowScale: UnsafePointer<Float>?, unitDenominator: Bool = false) -> UnsafeMutablePointer<Float> {
        let a = ctx.arith, ldv = ctx.ldv(dv)
        let out = allocateFloats(Swift.max(rows * ldv, 1))
        for i in 0..<rows {
            let src = dO + i * dv, dst = out + i * ldv
            if ctx.isSum, let o, let acc {
                let oi = o + i * dv, den: Float = unitDenominator ? 1 : acc[i * ldv + dv]
                var delta: Float = 0
                if a.pureHalf {
                    for c in 0..<dv { delta = a.op(delta + a.op(oi[c] * src[c])) }
                } else {
                    for c in 0..<dv { delta += oi[c] * src[c] }
                }
                for c in 0..<dv { dst[c] = src[c] / den }
                dst[dv] = -delta / den
                a.op(dst, ldv)
            } else if let rowScale {
                let sc = rowScale[i]
                for c in 0..<dv { dst[c] = src[c] * sc }
                a.op(dst, dv)
            } else {
                dst.update(from: src, count: dv)
            }
        }
        return out
    }
}

extension BackwardResult {
    /// Zero-filled gradients for `n` tokens; `dL` when `decay`, a state
    /// gradient `F × ldv` when `state`.
    static func zeros(n: Int, dk: Int, dv: Int, decay: Bool, stateSize: Int?) -> BackwardResult {
        BackwardResult(dq: allocateFloats(n * dk, fill: 0), dk: allocateFloats(n * dk, fill: 0),
                       dv: allocateFloats(n * dv, fill: 0), dL: decay ? allocateFloats(n, fill: 0) : nil,
                       dState: stateSize.map { allocateFloats($0, fill: 0) }, notes: [])
    }

    /// `dL = row − col` (un-normalised) or `−col` (sum-normalised: the row
    /// part is identically zero and is not formed), in the working format.
    mutating func finishDecay(_ ctx: CoreContext, row: UnsafePointer<Float>?, col: UnsafePointer<Float>, n: Int) {
        guard let dL else { return }
        for t in 0..<n { dL[t] = row.map { $0[t] - col[t] } ?? -col[t] }
        ctx.arith.op(dL, n)
    }
}

/// A large scratch buffer of Float32 values (the chunked backward's per-chunk
/// states, `⌈N/C⌉·F·ldv` values): not NaN-filled (every element is written
/// before it is read), 2 MiB-aligned and, on Linux, advised for transparent
/// huge pages when at least 4 MiB.
struct LargeBuffer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    let capacity: Int
    private var huge: Bool { capacity * MemoryLayout<Float>.stride >= 2 * (2 << 20) }

    init(count: Int) {
        capacity = Swift.max(count, 1)
        let bytes = capacity * MemoryLayout<Float>.stride
        let alignment = 2 << 20
        var raw: UnsafeMutableRawPointer? = nil
        if bytes >= 2 * alignment, posix_memalign(&raw, alignment, bytes) == 0, let raw {
            #if os(Linux)
            _ = madvise(raw, bytes, Int32(MADV_HUGEPAGE))
            #endif
            pointer = raw.bindMemory(to: Float.self, capacity: capacity)
        } else {
            pointer = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(bytes, 4), alignment: 64)
                .bindMemory(to: Float.self, capacity: capacity)
        }
    }

    func free() {
        if huge {
            #if canImport(Glibc)
            Glibc.free(UnsafeMutableRawPointer(pointer))
            #else
            Darwin.free(UnsafeMutableRawPointer(pointer))
            #endif
        } else {
            UnsafeMutableRawPointer(pointer).deallocate()
        }
    }
}

/// Reuses the chunked backward's chunk-state buffer (`LargeBuffer`, up to
/// 1 GiB) between calls *inside a retention scope* (`retaining`), as GPU
/// frameworks' caching allocators do: a fresh 138 MB buffer per call costs the
/// kernel's zeroing of every page on first touch (measured: 10–13% of the
/// 2Mamba chunked backward at N = 16,384 with AVX-512 BLAS kernels), which
/// matters to repeated timed runs. Outside any scope a released buffer is
/// freed at once, so a process holds the memory only while it computes
/// gradients. Thread-safe; at most one buffer is retained.
final class LargeBufferPool: @unchecked Sendable {
    static let shared = LargeBufferPool()
    static let retainLimitBytes = 1 << 30
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var cached: LargeBuffer?
    private var scopes = 0

    private init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    /// Runs `body` with reuse of released buffers on; the retained buffer is
    /// freed when the outermost scope ends.
    func retaining<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        scopes += 1
        pthread_mutex_unlock(mutex)
        defer {
            pthread_mutex_lock(mutex)
            scopes -= 1
            if scopes == 0, let c = cached { c.free(); cached = nil }
            pthread_mutex_unlock(mutex)
        }
        return try body()
    }

    /// A buffer of at least `count` values (contents undefined).
    func take(count: Int) -> LargeBuffer {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if let c = cached, c.capacity >= count {
            cached = nil
            return c
        }
        return LargeBuffer(count: count)
    }

    /// Returns a buffer: inside a scope kept if it is the larger one (and
    /// within the limit), freed otherwise.
    func give(_ b: LargeBuffer) {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard scopes > 0, b.capacity * MemoryLayout<Float>.stride <= Self.retainLimitBytes else { b.free(); return }
        if let c = cached {
            if c.capacity >= b.capacity { b.free(); return }
            c.free()
        }
        cached = b
    }

    /// Whether a buffer is retained now (for tests).
    var isHoldingBuffer: Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return cached != nil
    }
}
