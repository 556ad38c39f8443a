#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MambaVariants

/// Row-wise weight computations shared by the forms (docs/MATH.md §1): the score
/// `f(s·q·k)` times the decay `exp(l_i − l_j)`, formed from a row of raw dot
/// products `q_i·k_j` in place. The decay is built in log space from the
/// difference `l_i − l_j` and exponentiated only for causal entries
/// (`j ≤ i`, where `l_i − l_j ≤ 0` for a genuine decay), so nothing
/// overflows; entries above the diagonal are exact zeros and never
/// exponentiated. The quadratic and tiled forms pass the exponents
/// precomputed as segment sums (`exponents:` variants, `DecayExponents`).
/// Decay factors below 2⁻⁶⁰ are flushed to zero (`flushed`). The weights
/// themselves come from `WeightSweep`, which the backward blocks
/// (`PairWeights`) call too, so both directions form identical weights.
enum Rows {
    /// `x[j] ← f(s·x[j]) · exp(li − lj[j])` for `j < count` (`lj == nil`: no
    /// decay). Non-exponential scores only (`WeightSweep`).
    static func weights(_ ctx: CoreContext, _ x: UnsafeMutablePointer<Float>, _ count: Int,
                        li: Float, lj: UnsafePointer<Float>?, tmp: UnsafeMutablePointer<Float>) {
        guard count > 0 else { return }
        var g: UnsafePointer<Float>? = nil
        if let lj {
            for j in 0..<count { tmp[j] = li - lj[j] }
            if WeightSweep.factors(ctx, exponents: tmp, shift: nil, count: count, into: tmp) { g = UnsafePointer(tmp) }
        }
        WeightSweep.apply(ctx, x: x, count: count, factors: g, p: x, d: nil)
    }

    /// `x[j] ← f(s·x[j]) · exp(d[j])` for `j < count` with precomputed
    /// log-decay exponents `d` (`DecayExponents`; nil: no decay).
    /// Non-exponential scores only (`WeightSweep`).
    static func weights(_ ctx: CoreContext, _ x: UnsafeMutablePointer<Float>, _ count: Int,
                        exponents d: UnsafePointer<Float>?, tmp: UnsafeMutablePointer<Float>) {
        guard count > 0 else { return }
        let g = WeightSweep.factors(ctx, exponents: d, shift: nil, count: count, into: tmp) ? UnsafePointer(tmp) : nil
        WeightSweep.apply(ctx, x: x, count: count, factors: g, p: x, d: nil)
    }

    /// The weights of `weights(_:_:_:exponents:tmp:)` times a row factor
    /// `2^γ` (`γ ≥ 0`, returned): the underflow guard of sum-normalised
    /// cores whose weights are stored in binary16 (`RowGuard`).
    ///
    /// `γ = RowGuard.lift(max(max_j |w_j|, other))` capped at `cap`, where
    /// `other` is the largest entry of the row's state-term operand (the
    /// query features, which the caller scales by the same `2^γ`): rows whose
    /// largest entry is below 1/2 are lifted so that it lies in `[1/2, 1)`;
    /// other rows are unchanged (`γ = 0`), so binary16 overflow stays visible.
    /// The factor is a power of two: barring under/overflow the stored
    /// weights are exactly `2^γ` times the unguarded ones and `num/den` is
    /// bit-identical.
    ///
    /// acc32 modes: the Float32 weights are multiplied by `2^γ` (exact).
    /// Pure float16, where the weight itself is formed in binary16 (and
    /// `(s·q·k)²` underflows long before the product is stored): the factor is
    /// chosen from a Float32 evaluation of the row and folded into the factors
    /// *before* they are rounded: `t = s·x` (rounded) times `2^{k₁}` (exact,
    /// `|t·2^{k₁}| < 1`), then squared (squared score), then times
    /// `exp(d)·2^{k₂}` (`exp` in Float32 scaled exactly, then rounded;
    /// `k₂ ≤ 14` so the factor stays below 2¹⁴), with `γ = p·k₁ + k₂`
    /// (`p` = 2 squared, 1 linear). Same roundings as the unguarded path.
    static func guardedWeights(_ ctx: CoreContext, _ x: UnsafeMutablePointer<Float>, _ count: Int,
                               exponents d: UnsafePointer<Float>?, other: Float, cap: Int,
                               tmp: UnsafeMutablePointer<Float>) -> Int {
        guard count > 0 else { return Swift.max(0, Swift.min(RowGuard.lift(other), cap)) }
        let a = ctx.arith
        if !a.pureHalf {
            weights(ctx, x, count, exponents: d, tmp: tmp)
            var m: Float = 0
            for j in 0..<count { m = Swift.max(m, abs(x[j])) }
            let g = Swift.max(0, Swift.min(RowGuard.lift(Swift.max(m, other)), cap))
            if g > 0 { scale(ctx, x, count, by: RowGuard.power(g)) }
            return g
        }
        let s = ctx.scale, sq = ctx.isSquared, p = ctx.power
        for j in 0..<count { x[j] *= s }
        a.op(x, count)
        var tau: Float = 0, wmax: Float = 0
        if let d {
            for j in 0..<count { tmp[j] = exp(d[j]) }
        } else {
            tmp.update(repeating: 1, count: count)
        }
        for j in 0..<count {
            let t = abs(x[j])
            tau = Swift.max(tau, t)
            wmax = Swift.max(wmax, (sq ? t * t : t) * tmp[j])
        }
        let gamma = Swift.max(0, Swift.min(RowGuard.lift(Swift.max(wmax, other)), cap))
        let k1 = Swift.min(RowGuard.lift(tau), gamma / p)
        let k2 = Swift.min(gamma - p * k1, 14)
        if k1 > 0 {
            let f = RowGuard.power(k1)
            for j in 0..<count { x[j] *= f }
            a.op(x, count)
        }
        if sq {
            for j in 0..<count { x[j] *= x[j] }
            a.op(x, count)
        }
        if d != nil || k2 > 0 {
            let f = RowGuard.power(k2)
            for j in 0..<count { tmp[j] *= f }
            a.op(tmp, count)
            for j in 0..<count { x[j] *= tmp[j] }
            a.op(x, count)
        }
        return p * k1 + k2
    }

    /// Exponential score, log domain: `x[j] ← s·x[j] + d[j]` with
    /// precomputed exponents (nil: no decay); returns the row maximum.
    @discardableResult
    static func logits(_ ctx: CoreContext, _ x: UnsafeMutablePointer<Float>, _ count: Int,
                       exponents d: UnsafePointer<Float>?) -> Float {
        let s = ctx.scale, a = ctx.arith
        for j in 0..<count { x[j] *= s }
        a.op(x, count)
        if let d {
            for j in 0..<count { x[j] += d[j] }
            a.op(x, count)
        }
        var m = -Float.infinity
        for j in 0..<count { m = Swift.max(m, x[j]) }
        return m
    }

    /// Exponential score, log domain: `x[j] ← s·x[j] + (li − lj[j])`; returns
    /// the row maximum (−∞ for an empty row).
    @discardableResult
    static func logits(_ ctx: CoreContext, _ x: UnsafeMutablePointer<Float>, _ count: Int,
                       li: Float, lj: UnsafePointer<Float>?, tmp: UnsafeMutablePointer<Float>) -> Float {
        let s = ctx.scale, a = ctx.arith
        for j in 0..<count { x[j] *= s }
        a.op(x, count)
        if let lj {
            for j in 0..<count { tmp[j] = li - lj[j] }
            a.op(tmp, count)
            for j in 0..<count { x[j] += tmp[j] }
            a.op(x, count)
        }
        var m = -Float.infinity
        for j in 0..<count { m = Swift.max(m, x[j]) }
        return m
    }

    /// `x[j] ← exp(x[j] − m)` (0 when `m = −∞`: the row has no weight).
    static func expShifted(_ ctx: CoreContext, _ x: UnsafeMutablePointer<Float>, _ count: Int, m: Float) {
        if m == -.infinity {
            x.update(repeating: 0, count: count)
            return
        }
        let a = ctx.arith
        if a.pureHalf {
            for j in 0..<count { x[j] -= m }
            a.op(x, count)
            for j in 0..<count { x[j] = exp(x[j]) }
            a.op(x, count)
        } else {
            for j in 0..<count { x[j] = flushed(exp(x[j] - m)) }
        }
    }

    /// Raises a row's running maximum `m` to `mNew`, scaling the accumulated
    /// row by `exp(m − mNew)` when `rescale` (nothing to scale while
    /// `m = −∞`): the online-maximum step of the tiled and chunked forms and
    /// of their backward sweeps.
    static func raise(_ ctx: CoreContext, _ row: UnsafeMutablePointer<Float>, _ n: Int,
                      m: inout Float, to mNew: Float, rescale: Bool = true) {
        if rescale && mNew != m && m != -.infinity {
            let a = ctx.arith
            scale(ctx, row, n, by: a.op(exp(a.op(m - mNew))))
        }
        m = mNew
    }

    /// `row[0..<n] *= c` (rounded in pure float16).
    static func scale(_ ctx: CoreContext, _ row: UnsafeMutablePointer<Float>, _ n: Int, by c: Float) {
        for j in 0..<n { row[j] *= c }
        ctx.arith.op(row, n)
    }
}

/// The underflow guard of sum-normalised, non-exponential cores whose
/// weights, query features or state are stored in binary16 (`float16Acc32`
/// and pure `float16`; binary16's smallest normal number is 2⁻¹⁴ ≈ 6.1·10⁻⁵,
/// and a row of squared scores `(s·q·k)² < 2⁻²⁴` rounds to all zeros,
/// giving `0/0` where the exact result is finite).
///
/// Flash style, each row `i` of the quadratic and chunked forms is scaled by
/// a power of two `2^{γ_i}` before its operands are stored: the intra-row
/// weights `w_ij` *and* the query features of the state term
/// (`c·exp(ℓ_i)·φ(q_i)`), so numerator and denominator carry the same factor
/// and `num_i/den_i` is unchanged (exactly: powers of two commute with every
/// rounding barring under/overflow). The state multiplying the queries is
/// scaled by `2^η` (`η = lift(max|[S | z]|)`, the query features by `2^{−η}`).
/// Only *lifts* (`γ, η ≥ 0`): rows and states whose largest entry is at least
/// 1/2 are stored unscaled, so values beyond binary16's range (65504) still
/// overflow visibly (docs/MATH.md §6, `HazardTests.float16OverflowIsDetected`); the
/// tiled form with the stable maximum is the form free of both.
enum RowGuard {
    /// Whether `ctx` stores weights in binary16 and normalises rows.
    static func active(_ ctx: CoreContext) -> Bool {
        ctx.isSum && !ctx.isExponential && (ctx.arith.pureHalf || ctx.arith.operand == .float16)
    }

    /// `k ≥ 0` with `m·2^k ∈ [1/2, 1)` when `0 < m < 1/2`, else 0 (capped at 126).
    static func lift(_ m: Float) -> Int {
        guard m > 0, m.isFinite, m < 0.5 else { return 0 }
        return Swift.min(-Int(m.exponent) - 1, 126)
    }

    /// `2^k` (exact for `−149 ≤ k ≤ 127`; 0 below, +Inf above).
    static func power(_ k: Int) -> Float { Float(sign: .plus, exponent: k, significand: 1) }

    /// The largest `|φ(q)_a|` of a query row (Float32 probe; ReLU already
    /// applied for relu-linear): `max|q|`, or for the squared map
    /// `max(m₁², √2·m₁·m₂)` (`m₁ ≥ m₂` the two largest `|q_d|`; `m₁²` for the
    /// full `d²` map).
    static func featureMax(_ ctx: CoreContext, _ q: UnsafePointer<Float>, dk: Int) -> Float {
        var m1: Float = 0, m2: Float = 0
        for d in 0..<dk {
            let x = abs(q[d])
            if x > m1 { m2 = m1; m1 = x } else if x > m2 { m2 = x }
        }
        guard ctx.isSquared else { return m1 }
        return ctx.options.fullSecondOrderState ? m1 * m1 : Swift.max(m1 * m1, Float(2.0.squareRoot()) * m1 * m2)
    }

    /// `η = lift(max|x|)` over `count` values (NaN ignored; Inf: 0), the maximum
    /// in `ChunkedForm.maxMagnitude`'s independent partial maxima (the same value).
    static func stateLift(_ x: UnsafePointer<Float>, _ count: Int) -> Int {
        lift(ChunkedForm.maxMagnitude(x, count))
    }

    /// Largest `γ` such that a binary16 query-feature scale `base·2^{γ−η}`
    /// stays below 2¹⁴ (pure float16 rounds the scale itself); unbounded in
    /// the acc32 modes, whose scale is Float32.
    static func cap(_ ctx: CoreContext, base: Float, eta: Int) -> Int {
        guard ctx.arith.pureHalf, base > 0, base.isFinite else { return Int.max }
        return eta + 13 - Int(base.exponent)
    }
}

/// Division by the normaliser and the scan for non-finite results, with
/// diagnostics naming rows.
enum Finish {
    /// `o_i = num_i / den_i` (sum) or `num_i` (none) from the augmented
    /// accumulator `n×ldv`. A zero denominator is not clamped: the IEEE
    /// quotient (NaN for 0/0, ±Inf otherwise) is kept and the rows are
    /// named in a note; rows with a non-finite output are named too.
    static func rows(_ ctx: CoreContext, acc: UnsafePointer<Float>, n: Int, dv: Int) -> (UnsafeMutablePointer<Float>, [String]) {
        let ldv = ctx.ldv(dv)
        // Every element is written below (no poison fill first).
        let o = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(n * dv, 1))
        if n * dv == 0 { o.initialize(to: .nan) }
        var zeroDen: [Int] = []
        for i in 0..<n {
            let src = acc + i * ldv, dst = o + i * dv
            if ctx.isSum {
                let den = src[dv]
                if den == 0 { zeroDen.append(i) }
                for j in 0..<dv { dst[j] = src[j] / den }
            } else {
                dst.update(from: src, count: dv)
            }
        }
        if ctx.isSum { ctx.arith.op(o, n * dv) }
        var notes: [String] = []
        if !zeroDen.isEmpty {
            notes.append("zero denominator in rows \(describe(zeroDen, of: n)); the IEEE quotient is kept (no epsilon)")
        }
        let bad = nonFiniteRows(o, n: n, width: dv)
        if !bad.isEmpty { notes.append("non-finite output in rows \(describe(bad, of: n))") }
        return (o, notes)
    }

    static func nonFiniteRows(_ p: UnsafePointer<Float>, n: Int, width: Int) -> [Int] {
        var bad: [Int] = []
        for i in 0..<n {
            let r = p + i * width
            var ok = true
            for j in 0..<width where !r[j].isFinite { ok = false; break }
            if !ok { bad.append(i) }
        }
        return bad
    }

    /// `[3, 4, 9, …] (12 of 64)`.
    static func describe(_ rows: [Int], of n: Int) -> String {
        let shown = rows.prefix(8).map(String.init).joined(separator: ", ")
        return "[\(shown)\(rows.count > 8 ? ", …" : "")] (\(rows.count) of \(n))"
    }
}

/// The weight sweep the forward forms (`Rows.weights`) and the backward
/// blocks (`PairWeights`) share, for the non-exponential scores
/// (docs/MATH.md §1, §5): decay factors `g_j = exp(e_j − m)` of one row from
/// its pair exponents, then the weights `p_j = f(s·x_j)·g_j` and, for the
/// backward, their derivative factors `d_j = f'(s·x_j)·g_j`. Both directions
/// call these two functions, so they cannot compute different weights.
///
/// Pure float16 rounds every operation, in the order below; the Float32
/// working format fuses the loops (the same products, no extra roundings)
/// and flushes decay factors below 2⁻⁶⁰ (`flushed`).
enum WeightSweep {
    /// `g[j] ← exp(e[j] − m)` for `j < count` from the pair exponents `e`
    /// (`D_ij`: segment sums or `l_i − l_j`; nil: none) and the row shift `m`
    /// (nil: none). Returns false, writing nothing, when there is neither
    /// (every factor is 1). `g` may be `e`.
    @inline(__always)
    static func factors(_ ctx: CoreContext, exponents e: UnsafePointer<Float>?, shift m: Float?, count: Int,
                        into g: UnsafeMutablePointer<Float>) -> Bool {
        guard e != nil || m != nil else { return false }
        let a = ctx.arith
        if a.pureHalf {
            if let e {
                if e != UnsafePointer(g) { g.update(from: e, count: count) }
            } else {
                g.update(repeating: 0, count: count)
            }
            a.op(g, count)
            if let m {
                for j in 0..<count { g[j] -= m }
                a.op(g, count)
            }
            for j in 0..<count { g[j] = exp(g[j]) }
            a.op(g, count)
            return true
        }
        let shift = m ?? 0
        if let e {
            for j in 0..<count { g[j] = flushed(exp(e[j] - shift)) }
        } else {
            g.update(repeating: flushed(exp(0 - shift)), count: count)
        }
        return true
    }

    /// `p[j] ← f(s·x[j])·g[j]` and, when `d` is given, `d[j] ← f'(s·x[j])·g[j]`
    /// for `j < count` (`g` nil: factors 1). `p` may be `x`; `d` and `g` are
    /// distinct from both.
    @inline(__always)
    static func apply(_ ctx: CoreContext, x: UnsafePointer<Float>, count: Int, factors g: UnsafePointer<Float>?,
                      p: UnsafeMutablePointer<Float>, d: UnsafeMutablePointer<Float>?) {
        let s = ctx.scale, a = ctx.arith, sq = ctx.isSquared
        if a.pureHalf {
            // t = s·x, then f(t) = t or t², f'(t) = 1 or 2t, then the factors.
            for j in 0..<count { p[j] = s * x[j] }
            a.op(p, count)
            if sq {
                if let d {
                    for j in 0..<count { d[j] = 2 * p[j] }
                    a.op(d, count)
                }
                for j in 0..<count { p[j] *= p[j] }
                a.op(p, count)
                if let g {
                    for j in 0..<count { p[j] *= g[j] }
                    a.op(p, count)
                    if let d {
                        for j in 0..<count { d[j] *= g[j] }
                        a.op(d, count)
                    }
                }
            } else if let g {
                for j in 0..<count { p[j] *= g[j] }
                a.op(p, count)
                d?.update(from: g, count: count)
            } else {
                d?.update(repeating: 1, count: count)
            }
            return
        }
        switch (sq, g) {
        case (true, let g?):
            if let d {
                for j in 0..<count { let u = s * x[j]; p[j] = u * u * g[j]; d[j] = 2 * u * g[j] }
            } else {
                for j in 0..<count { let u = s * x[j]; p[j] = u * u * g[j] }
            }
        case (true, nil):
            if let d {
                for j in 0..<count { let u = s * x[j]; p[j] = u * u; d[j] = 2 * u }
            } else {
                for j in 0..<count { let u = s * x[j]; p[j] = u * u }
            }
        case (false, let g?):
            for j in 0..<count { p[j] = s * x[j] * g[j] }
            d?.update(from: g, count: count)
        case (false, nil):
            for j in 0..<count { p[j] = s * x[j] }
            d?.update(repeating: 1, count: count)
        }
    }
}
