import Foundation
import MambaVariants

/// A small attention core (docs/MATH.md §1) computed three ways, for judging the
/// verdict on realistic data:
///
/// - `oracle`: in `Double` (its error, ~1e−16·magnitude, is invisible at the
///   Float16 scale), with the magnitudes `ReferenceOutput` defines;
/// - `kernel(...)`: a Float16-input / Float32-accumulate / Float16-output
///   emulation (weights rounded to Float16 before the `PV` product, as
///   flash-style kernels do), in a chosen summation order, optionally with one
///   of the bugs a real kernel might have.
struct CoreEmulation {
    enum Score { case linear, squared }
    enum Bug: CaseIterable {
        /// `Γ_ij = exp(L_i − L_{j−1})`: the key's own decay applied.
        case offByOneDecay
        /// Mask `j ≤ i + 1`: the next token leaks into each row.
        case leakedFutureToken
        /// Second-order map without √2 on cross terms: `(q·k)²` loses half its cross part.
        case missingSqrt2
        /// Score scale applied twice: `s²·q·k`.
        case scaleTwice
        /// The last chunk of `chunk` tokens is never written (left at zero).
        case droppedLastChunk
    }

    let n: Int, dk: Int, dv: Int
    let score: Score
    let normalised: Bool
    let q: [[Double]], k: [[Double]], v: [[Double]]
    let a: [Double]
    let s: Double
    let chunk = 16

    init(seed: UInt64, n: Int = 64, dk: Int = 8, dv: Int = 8, score: Score, normalised: Bool) {
        var g = SeededGenerator(seed: seed)
        func f16(_ x: Double) -> Double { Double(Float16(x)) }
        self.n = n; self.dk = dk; self.dv = dv
        self.score = score; self.normalised = normalised
        q = (0..<n).map { _ in (0..<dk).map { _ in f16(g.normal()) } }
        k = (0..<n).map { _ in (0..<dk).map { _ in f16(g.normal()) } }
        v = (0..<n).map { _ in (0..<dv).map { _ in f16(g.normal()) } }
        // a_t = −softplus(z), z ~ N(0,1): decays between e^{−3} and 1.
        a = (0..<n).map { _ in let z = g.normal(); return f16(-log1p(exp(z))) }
        s = 1 / Double(dk).squareRoot()
    }

    var shape: [Int] { [n, dv] }

    private func f(_ x: Double) -> Double { score == .linear ? x : x * x }

    /// `(y, magnitude)` in Double, row-major `[n, dv]`.
    func oracle() -> (y: [Double], magnitude: [Double]) {
        var y = [Double](repeating: 0, count: n * dv), m = y
        var prefix = [Double](repeating: 0, count: n)
        var total = 0.0
        for t in 0..<n { total += a[t]; prefix[t] = total }
        for i in 0..<n {
            var w = [Double](repeating: 0, count: i + 1)
            for j in 0...i {
                var dot = 0.0
                for c in 0..<dk { dot += q[i][c] * k[j][c] }
                w[j] = f(s * dot) * exp(prefix[i] - prefix[j])
            }
            let denominator = normalised ? w.reduce(0, +) : 1
            for c in 0..<dv {
                var num = 0.0, abs = 0.0
                for j in 0...i { num += w[j] * v[j][c]; abs += Swift.abs(w[j] * v[j][c]) }
                let out = num / denominator
                y[i * dv + c] = out
                if normalised {
                    var mag = 0.0
                    for j in 0...i { mag += w[j] * (Swift.abs(v[j][c]) + Swift.abs(out)) }
                    m[i * dv + c] = mag / denominator
                } else {
                    m[i * dv + c] = abs
                }
            }
        }
        return (y, m)
    }

    /// The emulated low-precision kernel: Float32 arithmetic, weights rounded
    /// to Float16 before the weighted sum, Float16 output; `reversed` sums
    /// keys from last to first; `pureHalf` rounds every operation to Float16.
    func kernel(reversed: Bool = false, pureHalf: Bool = false, bug: Bug? = nil) -> [Double] {
        func r(_ x: Float) -> Float { pureHalf ? Float(Float16(x)) : x }
        var out = [Double](repeating: 0, count: n * dv)
        var prefix = [Float](repeating: 0, count: n)
        var total: Float = 0
        for t in 0..<n { total = r(total + Float(a[t])); prefix[t] = total }
        let scale = bug == .scaleTwice ? Float(s * s) : Float(s)
        for i in 0..<n {
            if bug == .droppedLastChunk, i >= (n - 1) / chunk * chunk { continue }
            let last = bug == .leakedFutureToken ? Swift.min(i + 1, n - 1) : i
            var w = [Float](repeating: 0, count: last + 1)
            for j in 0...last {
                var dot: Float
                if bug == .missingSqrt2 {
                    var diagonal: Float = 0, cross: Float = 0
                    for c in 0..<dk {
                        diagonal = r(diagonal + r(r(Float(q[i][c]) * Float(k[j][c])) * r(Float(q[i][c]) * Float(k[j][c]))))
                        for d in (c + 1)..<dk {
                            cross = r(cross + r(r(Float(q[i][c]) * Float(q[i][d])) * r(Float(k[j][c]) * Float(k[j][d]))))
                        }
                    }
                    dot = r(r(scale * scale) * r(diagonal + cross))     // squared score with cross weight 1, not 2
                } else {
                    dot = 0
                    for c in 0..<dk { dot = r(dot + r(Float(q[i][c]) * Float(k[j][c]))) }
                    dot = r(scale * dot)
                    if score == .squared { dot = r(dot * dot) }
                }
                let exponent = bug == .offByOneDecay ? (j > 0 ? prefix[i] - prefix[j - 1] : prefix[i])
                                                     : prefix[i] - prefix[j]
                let decay = r(Foundation.exp(r(exponent)))
                w[j] = Float(Float16(r(dot * decay)))          // P rounded to Float16 before PV
            }
            let order = reversed ? Array((0...last).reversed()) : Array(0...last)
            var denominator: Float = 0
            if normalised { for j in order { denominator = r(denominator + w[j]) } }
            for c in 0..<dv {
                var num: Float = 0
                for j in order { num = r(num + r(w[j] * Float(v[j][c]))) }
                let y = normalised ? r(num / denominator) : num
                out[i * dv + c] = Double(Float16(y))
            }
        }
        return out
    }
}
