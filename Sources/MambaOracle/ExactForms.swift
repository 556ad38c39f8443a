import MambaPrecision
import MambaVariants

/// A core problem over exact rationals (issue 3 item 5): decays are given as
/// rational factors `α_t ∈ (0, 1]` instead of `exp(a_t)`, so every form can
/// be evaluated without any rounding and compared with `==`.
///
/// For the squared score the second-order map needs a cross weight whose
/// square is 2; over the rationals we use the equivalent asymmetric split
/// (docs/MATH.md §4): `φ_q(x)_(i,j) = 2·x_i x_j`, `φ_k(x)_(i,j) = x_i x_j` for `i < j`
/// and `x_i²` on the diagonal, so `⟨φ_q(q), φ_k(k)⟩ = (q·k)²` exactly.
public struct ExactCoreProblem: @unchecked Sendable {
    public var spec: CoreSpec
    public var length: Int, keyDim: Int, valueDim: Int
    public var q: [Rational], k: [Rational], v: [Rational]
    /// `α_t`, required iff the core has a decay.
    public var alpha: [Rational]?
    public var scale: Rational
    /// Initial state (`F × dv` and `F`, keys' feature side), optional.
    public var s0: [Rational]?
    public var z0: [Rational]?

    public init(spec: CoreSpec, length: Int, keyDim: Int, valueDim: Int, q: [Rational], k: [Rational],
                v: [Rational], alpha: [Rational]?, scale: Rational, s0: [Rational]? = nil, z0: [Rational]? = nil) {
        precondition(spec.score != .exponential, "the exponential score is not rational")
        self.spec = spec; self.length = length; self.keyDim = keyDim; self.valueDim = valueDim
        self.q = q; self.k = k; self.v = v; self.alpha = alpha; self.scale = scale; self.s0 = s0; self.z0 = z0
    }

    /// A seeded problem with small dyadic inputs (multiples of 1/8 in [−2, 2])
    /// and decays `α_t = m/16`, `m ∈ 1…16`.
    public static func random(spec: CoreSpec, length: Int, keyDim: Int, valueDim: Int, withInitialState: Bool,
                              seed: UInt64) -> ExactCoreProblem {
        var g = SeededGenerator(seed: seed)
        func r() -> Rational { Rational(Int(g.uniform(-16, 17).rounded(.down)), 8) }
        let q = (0..<(length * keyDim)).map { _ in r() }
        let k = (0..<(length * keyDim)).map { _ in r() }
        let v = (0..<(length * valueDim)).map { _ in r() }
        let alpha = spec.hasDecay ? (0..<length).map { _ in Rational(1 + Int(g.uniform(0, 16)), 16) } : nil
        var p = ExactCoreProblem(spec: spec, length: length, keyDim: keyDim, valueDim: valueDim, q: q, k: k, v: v,
                                 alpha: alpha, scale: Rational(1, 2))
        if withInitialState {
            // A genuine state: features of a 3-token prefix (keeps sum-normalised rows positive).
            let f = spec.featureDimension(keyDim: keyDim)!
            var s = [Rational](repeating: Rational(0), count: f * valueDim)
            var z = [Rational](repeating: Rational(0), count: f)
            for _ in 0..<3 {
                let kk = (0..<keyDim).map { _ in r() }, vv = (0..<valueDim).map { _ in r() }
                let phi = p.keyFeatures(kk[...])
                for a in 0..<f {
                    z[a] = z[a] + phi[a]
                    for c in 0..<valueDim { s[a * valueDim + c] = s[a * valueDim + c] + phi[a] * vv[c] }
                }
            }
            p.s0 = s
            p.z0 = spec.normalization == .sum ? z : nil
        }
        return p
    }

    var traits: ScoreTraits { spec.score.traits }

    func relu(_ x: Rational) -> Rational { traits.reluOnInputs && x.signum < 0 ? Rational(0) : x }

    func keyFeatures(_ x: ArraySlice<Rational>) -> [Rational] {
        features(x, crossWeight: Rational(traits.exactSplitCrossWeights!.key))
    }
    func queryFeatures(_ x: ArraySlice<Rational>) -> [Rational] {
        features(x, crossWeight: Rational(traits.exactSplitCrossWeights!.query))
    }

    func features(_ x: ArraySlice<Rational>, crossWeight: Rational) -> [Rational] {
        let xs = x.map(relu)
        switch traits.featureMap! {
        case .identity, .relu:
            return xs
        case .packedSecondOrder:
            var out: [Rational] = []
            for i in 0..<xs.count {
                out.append(xs[i] * xs[i])
                for j in (i + 1)..<Swift.max(xs.count, i + 1) where j < xs.count { out.append(crossWeight * xs[i] * xs[j]) }
            }
            return out
        }
    }

    /// `xᵖ`, the polynomial score `f` (docs/MATH.md §1).
    func power(_ x: Rational) -> Rational {
        (1..<traits.power!).reduce(x) { r, _ in r * x }
    }

    func row(_ m: [Rational], _ i: Int, _ d: Int) -> ArraySlice<Rational> { m[i * d ..< (i + 1) * d] }

    /// `Π_{t=lo}^{hi} α_t` (1 when empty or without decay).
    func decay(from lo: Int, through hi: Int) -> Rational {
        guard let a = alpha, lo <= hi else { return Rational(1) }
        return (lo...hi).reduce(Rational(1)) { $0 * a[$1] }
    }

    var queryConstant: Rational { power(scale) }
}

/// The three forms over the rationals. Equal outputs and final states prove
/// the algebra of docs/MATH.md §3 on the instance, independent of rounding.
public enum ExactForms {
    public struct Result: @unchecked Sendable, Equatable {
        /// Outputs; nil where a sum-normalised row's denominator is exactly
        /// zero (reported, not patched with an epsilon).
        public var o: [Rational?]
        public var s: [Rational]
        public var z: [Rational]
        public static func == (a: Result, b: Result) -> Bool { a.o == b.o && a.s == b.s && a.z == b.z }
    }

    /// docs/MATH.md §1 literally: `w_ij = f(s q_i·k_j)·Π_{t=j+1}^{i} α_t`, plus the
    /// initial state decayed by `Π_{t=0}^{i} α_t`; final state from the same sums.
    public static func quadratic(_ p: ExactCoreProblem) -> Result {
        let n = p.length, dk = p.keyDim, dv = p.valueDim
        let f = p.spec.featureDimension(keyDim: dk)!
        var o: [Rational?] = []
        for i in 0..<n {
            var num = [Rational](repeating: Rational(0), count: dv)
            var den = Rational(0)
            for j in 0...i {
                let x = zip(p.row(p.q, i, dk), p.row(p.k, j, dk)).reduce(Rational(0)) { $0 + p.relu($1.0) * p.relu($1.1) }
                let sx = p.scale * x
                let w = p.power(sx) * p.decay(from: j + 1, through: i)
                den = den + w
                for c in 0..<dv { num[c] = num[c] + w * p.v[j * dv + c] }
            }
            if let s0 = p.s0 {
                let phi = p.queryFeatures(p.row(p.q, i, dk))
                let g = p.queryConstant * p.decay(from: 0, through: i)
                for a in 0..<f {
                    for c in 0..<dv { num[c] = num[c] + g * phi[a] * s0[a * dv + c] }
                    if let z0 = p.z0 { den = den + g * phi[a] * z0[a] }
                }
            }
            o += p.spec.normalization == .sum ? num.map { den.isZero ? nil : $0 / den } : num
        }
        var s = [Rational](repeating: Rational(0), count: f * dv)
        var z = [Rational](repeating: Rational(0), count: f)
        for j in 0..<n {
            let phi = p.keyFeatures(p.row(p.k, j, dk))
            let g = p.decay(from: j + 1, through: n - 1)
            for a in 0..<f {
                z[a] = z[a] + g * phi[a]
                for c in 0..<dv { s[a * dv + c] = s[a * dv + c] + g * phi[a] * p.v[j * dv + c] }
            }
        }
        let g0 = p.decay(from: 0, through: n - 1)
        if let s0 = p.s0 { for i in 0..<(f * dv) { s[i] = s[i] + g0 * s0[i] } }
        if let z0 = p.z0 { for i in 0..<f { z[i] = z[i] + g0 * z0[i] } }
        return Result(o: o, s: s, z: p.spec.normalization == .sum ? z : [])
    }

    /// `S_t = α_t S_{t−1} + φ(k_t) v_tᵀ`, `y_t = c·φ(q_t)ᵀS_t` (or the ratio with z).
    public static func recurrent(_ p: ExactCoreProblem) -> Result {
        let n = p.length, dk = p.keyDim, dv = p.valueDim
        let f = p.spec.featureDimension(keyDim: dk)!
        var s = p.s0 ?? [Rational](repeating: Rational(0), count: f * dv)
        var z = p.z0 ?? [Rational](repeating: Rational(0), count: f)
        var o: [Rational?] = []
        for t in 0..<n {
            let a = p.decay(from: t, through: t)
            let fk = p.keyFeatures(p.row(p.k, t, dk)), fq = p.queryFeatures(p.row(p.q, t, dk))
            for i in 0..<f {
                z[i] = a * z[i] + fk[i]
                for c in 0..<dv { s[i * dv + c] = a * s[i * dv + c] + fk[i] * p.v[t * dv + c] }
            }
            let den = (0..<f).reduce(Rational(0)) { $0 + fq[$1] * z[$1] }
            for c in 0..<dv {
                let num = (0..<f).reduce(Rational(0)) { $0 + fq[$1] * s[$1 * dv + c] }
                o.append(p.spec.normalization == .sum ? (den.isZero ? nil : num / den) : p.queryConstant * num)
            }
        }
        return Result(o: o, s: s, z: p.spec.normalization == .sum ? z : [])
    }

    /// Chunks of `chunkSize`: intra-chunk quadratic with chunk-local decay
    /// products, inter-chunk `c·(Π_{t=c₀}^{i} α_t)·φ(q_i)ᵀS`, carry with the
    /// whole chunk's product.
    public static func chunked(_ p: ExactCoreProblem, chunkSize: Int) -> Result {
        let n = p.length, dk = p.keyDim, dv = p.valueDim
        let f = p.spec.featureDimension(keyDim: dk)!
        var s = p.s0 ?? [Rational](repeating: Rational(0), count: f * dv)
        var z = p.z0 ?? [Rational](repeating: Rational(0), count: f)
        var o: [Rational?] = []
        var c0 = 0
        while c0 < n {
            let c1 = Swift.min(n, c0 + chunkSize)
            for i in c0..<c1 {
                var num = [Rational](repeating: Rational(0), count: dv)
                var den = Rational(0)
                for j in c0...i {
                    let x = zip(p.row(p.q, i, dk), p.row(p.k, j, dk)).reduce(Rational(0)) { $0 + p.relu($1.0) * p.relu($1.1) }
                    let sx = p.scale * x
                    let w = p.power(sx) * p.decay(from: j + 1, through: i)
                    den = den + w
                    for c in 0..<dv { num[c] = num[c] + w * p.v[j * dv + c] }
                }
                let fq = p.queryFeatures(p.row(p.q, i, dk))
                let g = p.queryConstant * p.decay(from: c0, through: i)
                for a in 0..<f {
                    for c in 0..<dv { num[c] = num[c] + g * fq[a] * s[a * dv + c] }
                    den = den + g * fq[a] * z[a]
                }
                o += p.spec.normalization == .sum ? num.map { den.isZero ? nil : $0 / den } : num
            }
            let total = p.decay(from: c0, through: c1 - 1)
            var ns = s.map { total * $0 }, nz = z.map { total * $0 }
            for j in c0..<c1 {
                let fk = p.keyFeatures(p.row(p.k, j, dk))
                let g = p.decay(from: j + 1, through: c1 - 1)
                for a in 0..<f {
                    nz[a] = nz[a] + g * fk[a]
                    for c in 0..<dv { ns[a * dv + c] = ns[a * dv + c] + g * fk[a] * p.v[j * dv + c] }
                }
            }
            s = ns; z = nz
            c0 = c1
        }
        return Result(o: o, s: s, z: p.spec.normalization == .sum ? z : [])
    }
}
