#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MambaVariants

/// Row-wise weight computations shared by the forms (SPEC §1): the score
/// `f(s·q·k)` times the decay `exp(l_i − l_j)`, formed from a row of raw dot
/// products `q_i·k_j` in place. The decay is built in log space from the
/// difference `l_i − l_j` and exponentiated only for causal entries
/// (`j ≤ i`, where `l_i − l_j ≤ 0` for a genuine decay), so nothing
/// overflows; entries above the diagonal are exact zeros and never
/// exponentiated. Decay factors below 2⁻⁶⁰ are flushed to zero (`flushed`). In pure float16 each operation is a separate rounded
/// pass; otherwise the loop is fused.
enum Rows {
    /// `x[j] ← f(s·x[j]) · exp(li − lj[j])` for `j < count` (`lj == nil`: no
    /// decay). Non-exponential scores only.
    static func weights(_ ctx: CoreContext, _ x: UnsafeMutablePointer<Float>, _ count: Int,
                        li: Float, lj: UnsafePointer<Float>?, tmp: UnsafeMutablePointer<Float>) {
        guard count > 0 else { return }
        let s = ctx.scale, a = ctx.arith, sq = ctx.isSquared
        if a.pureHalf {
            for j in 0..<count { x[j] *= s }
            a.op(x, count)
            if sq {
                for j in 0..<count { x[j] *= x[j] }
                a.op(x, count)
            }
            if let lj {
                for j in 0..<count { tmp[j] = li - lj[j] }
                a.op(tmp, count)
                for j in 0..<count { tmp[j] = exp(tmp[j]) }
                a.op(tmp, count)
                for j in 0..<count { x[j] *= tmp[j] }
                a.op(x, count)
            }
            return
        }
        if let lj {
            if sq {
                for j in 0..<count { let t = s * x[j]; x[j] = t * t * flushed(exp(li - lj[j])) }
            } else {
                for j in 0..<count { x[j] = s * x[j] * flushed(exp(li - lj[j])) }
            }
        } else {
            if sq {
                for j in 0..<count { let t = s * x[j]; x[j] = t * t }
            } else {
                for j in 0..<count { x[j] *= s }
            }
        }
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

    /// `row[0..<n] *= c` (rounded in pure float16).
    static func scale(_ ctx: CoreContext, _ row: UnsafeMutablePointer<Float>, _ n: Int, by c: Float) {
        for j in 0..<n { row[j] *= c }
        ctx.arith.op(row, n)
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
        let o = allocateFloats(n * dv)
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
