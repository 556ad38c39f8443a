import Foundation
import MambaVariants

/// Bugs a real linear-attention kernel might have, planted on purpose.
enum PlantedBug: String, CaseIterable, Sendable, CustomStringConvertible {
    /// `Γ_ij = exp(L_i − L_{j−1})`: the key's own decay `a_j` applied (off by one token).
    case offByOneDecay = "off-by-one-decay"
    /// Causal mask `j ≤ i + 1`: the next token leaks into every row.
    case leakedNextToken = "leaked-next-token"
    /// Second-order map without √2 on cross terms in the inter-chunk (state) path:
    /// `φ₂(q)·φ₂(k) = Σ q_c²k_c² + Σ_{c<d} q_c q_d k_c k_d`, half the cross part of `(q·k)²`.
    case missingSqrt2 = "missing-sqrt2"
    /// Score scale applied twice: `s²·q·k` instead of `s·q·k`.
    case scaleTwice = "scale-twice"
    /// The last, partial chunk is never written (its rows stay zero).
    case droppedLastChunk = "dropped-last-chunk"
    /// Every operation in Float16 — prefix sums, dot products, weighted sums,
    /// normaliser — instead of Float32 accumulation.
    case float16Accumulation = "float16-accumulation"

    var description: String { rawValue }
}

/// A compact evaluation of docs/MATH.md §1 written for these tests (quadratic
/// form, global prefix sums), independent of MambaCheck's kernels, with a
/// switch for each planted bug. Without `float16Accumulation` it computes in
/// `Double`; the caller rounds the output once to the dump's dtype. Problems
/// without an initial state only.
enum PlantedBugKernel {
    static func run(_ p: CoreProblem, bug: PlantedBug?, chunk: Int = 64) -> [Double] {
        precondition(p.initialState == nil, "the planted-bug kernel has no initial-state path")
        let n = p.length, dk = p.keyDim, dv = p.valueDim
        // Rounding after every operation: none (Double) or to binary16.
        let r: (Double) -> Double = bug == .float16Accumulation ? { Double(Float16($0)) } : { $0 }
        var out = [Double](repeating: 0, count: p.sequences * n * dv)
        for seq in 0..<p.sequences {
            func row(_ x: [Double], _ t: Int, _ width: Int) -> ArraySlice<Double> {
                x[(seq * n + t) * width ..< (seq * n + t + 1) * width]
            }
            let relu = p.spec.score == .reluLinear
            let q = (0..<n).map { t in row(p.q, t, dk).map { relu ? Swift.max($0, 0) : $0 } }
            let k = (0..<n).map { t in row(p.k, t, dk).map { relu ? Swift.max($0, 0) : $0 } }
            let v = (0..<n).map { t in Array(row(p.v, t, dv)) }
            var steps = [Double](repeating: 0, count: n)
            if case .perStep(let a)? = p.decay { steps = Array(a[seq * n ..< (seq + 1) * n]) }
            var prefix = [Double](repeating: 0, count: n)
            var total = 0.0
            for t in 0..<n { total = r(total + steps[t]); prefix[t] = total }
            let s = bug == .scaleTwice ? r(p.scale * p.scale) : r(p.scale)
            for i in 0..<n {
                if bug == .droppedLastChunk, i >= (n - 1) / chunk * chunk { continue }
                let last = bug == .leakedNextToken ? Swift.min(i + 1, n - 1) : i
                var num = [Double](repeating: 0, count: dv)
                var den = 0.0
                for j in 0...last {
                    var dot = 0.0
                    for c in 0..<dk { dot = r(dot + r(q[i][c] * k[j][c])) }
                    let exponent: Double
                    if p.spec.hasDecay {
                        let lj = bug == .offByOneDecay ? (j > 0 ? prefix[j - 1] : 0) : prefix[j]
                        exponent = r(prefix[i] - lj)
                    } else {
                        exponent = 0
                    }
                    var w: Double
                    switch p.spec.score {
                    case .linear, .reluLinear:
                        w = r(r(s * dot) * r(exp(exponent)))
                    case .squared:
                        if bug == .missingSqrt2, j / chunk < i / chunk {
                            var diagonal = 0.0, cross = 0.0
                            for c in 0..<dk {
                                diagonal += q[i][c] * k[j][c] * q[i][c] * k[j][c]
                                for d in (c + 1)..<dk { cross += q[i][c] * q[i][d] * k[j][c] * k[j][d] }
                            }
                            w = s * s * (diagonal + cross) * exp(exponent)
                        } else {
                            let x = r(s * dot)
                            w = r(r(x * x) * r(exp(exponent)))
                        }
                    case .exponential:
                        w = r(exp(r(r(s * dot) + exponent)))
                    }
                    den = r(den + w)
                    for c in 0..<dv { num[c] = r(num[c] + r(w * v[j][c])) }
                }
                for c in 0..<dv {
                    out[(seq * n + i) * dv + c] = p.spec.normalization == .sum ? r(num[c] / den) : num[c]
                }
            }
        }
        return out
    }
}
