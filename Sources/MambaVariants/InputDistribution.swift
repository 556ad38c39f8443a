/// Named, seeded input distributions for core problems (issue 3 item 7,
/// docs/MATH.md §6). Every value is rounded to `storage` so that a kernel reading
/// that format receives exactly the numbers the oracle sees.
public enum InputDistribution: String, CaseIterable, Sendable, Codable {
    /// The paper's tests: q, k, v ~ N(0, 0.5²), a = −softplus(N(0, 0.5²)).
    case paper
    /// FLA's tests: q, k, v ~ N(0, 1), a = −softplus(N(0, 1)).
    case fla
    /// First key block very negative: s·q·k ≈ −200 for the first 16 keys
    /// (the lagging-maximum hazard of the tiled squared kernel).
    case laggingMaximum = "lagging-maximum"
    /// Scores with |s·q·k| > 256, so that (s·q·k)² overflows binary16.
    case float16Overflow = "float16-overflow"
    /// Sum-normalised rows whose normaliser is tiny relative to its terms:
    /// strong decay (a ≈ −30) makes the history vanish while keys are small.
    case nearZeroNormaliser = "near-zero-normaliser"
    /// Strong decays, for prefix-sum cancellation at long N (use N = 65,536).
    case strongDecay = "strong-decay"
    /// Every query row of the first half is ≤ 0, so ReLU features vanish and
    /// the relu-linear normaliser is exactly 0 there.
    case zeroReluRows = "zero-relu-rows"
}

/// Storage format of generated inputs.
public enum InputStorage: String, CaseIterable, Sendable, Codable {
    case float64, float32, float16, bfloat16

    /// `x` rounded once to this format (round to nearest, ties to even).
    public func round(_ x: Double) -> Double {
        switch self {
        case .float64: return x
        case .float32: return Double(Float(x))
        case .float16: return Double(Float(Float16(x)))
        case .bfloat16:
            // Round the binary32 value to the top 16 bits (nearest even). The
            // double rounding Double → Float → bfloat16 is harmless here: these
            // are random inputs, only the result being a bfloat16 value matters.
            let f = Float(x)
            if !f.isFinite { return Double(f) }
            let b = f.bitPattern
            let rounded = (b &+ 0x7FFF &+ ((b >> 16) & 1)) & 0xFFFF_0000
            return Double(Float(bitPattern: rounded))
        }
    }
}

extension CoreProblem {
    /// A seeded random problem. Decays are per-step (`a`), initial state
    /// optional (ignored for the exponential score).
    public static func random(spec: CoreSpec, batch: Int = 1, heads: Int = 1, length: Int, keyDim: Int, valueDim: Int,
                              distribution: InputDistribution = .paper, storage: InputStorage = .float32,
                              withInitialState: Bool = false, scale: Double? = nil, seed: UInt64) -> CoreProblem {
        var g = SeededGenerator(seed: seed)
        let bh = batch * heads
        let std = distribution == .fla ? 1.0 : 0.5
        let s = scale ?? 1 / Double(keyDim).squareRoot()
        func r(_ x: Double) -> Double { storage.round(x) }
        var q = (0..<(bh * length * keyDim)).map { _ in r(g.normal(std: std)) }
        var k = (0..<(bh * length * keyDim)).map { _ in r(g.normal(std: std)) }
        let v = (0..<(bh * length * valueDim)).map { _ in r(g.normal(std: std)) }
        var a = (0..<(bh * length)).map { _ in r(-softplus(g.normal(std: std))) }
        switch distribution {
        case .paper, .fla:
            break
        case .laggingMaximum:
            // q = +c·1, first 16 keys = −c·1 with s·c²·dk = 200, later keys small.
            let c = (200 / (s * Double(keyDim))).squareRoot()
            for seq in 0..<bh {
                for t in 0..<length {
                    for d in 0..<keyDim {
                        let i = (seq * length + t) * keyDim + d
                        q[i] = r(c)
                        k[i] = t < 16 ? r(-c) : r(0.1 * g.normal())
                    }
                }
            }
        case .float16Overflow:
            // |s·q·k| ≈ 300 on aligned rows.
            let c = (300 / (s * Double(keyDim))).squareRoot()
            for i in 0..<q.count { q[i] = r(c * (q[i] >= 0 ? 1 : -1)); k[i] = r(c * (q[i] >= 0 ? 1 : -1)) }
        case .nearZeroNormaliser:
            for i in 0..<k.count { k[i] = r(k[i] * 1e-3) }
            for i in 0..<a.count { a[i] = r(-30 - 5 * g.uniform()) }
        case .strongDecay:
            for i in 0..<a.count { a[i] = r(-softplus(g.normal(mean: 1, std: 1))) }
        case .zeroReluRows:
            for seq in 0..<bh {
                for t in 0..<(length / 2) {
                    for d in 0..<keyDim { q[(seq * length + t) * keyDim + d] = r(-abs(q[(seq * length + t) * keyDim + d])) }
                }
            }
        }
        var state: CoreState? = nil
        if withInitialState, let f = spec.featureDimension(keyDim: keyDim) {
            // A genuine state: the features of a random 8-token prefix, so that
            // sum-normalised rows keep a positive normaliser (φ₂ has signed entries).
            var sv = [Double](repeating: 0, count: bh * f * valueDim)
            var z = [Double](repeating: 0, count: bh * f)
            for seq in 0..<bh {
                for _ in 0..<8 {
                    let kk = (0..<keyDim).map { _ in g.normal(std: std) }
                    let vv = (0..<valueDim).map { _ in g.normal(std: std) }
                    let phi = FeatureMap.apply(spec.score, kk)
                    for i in 0..<f {
                        z[seq * f + i] += phi[i]
                        for j in 0..<valueDim { sv[(seq * f + i) * valueDim + j] += phi[i] * vv[j] }
                    }
                }
            }
            state = CoreState(s: sv.map(r), z: spec.normalization == .sum ? z.map(r) : nil)
        }
        return CoreProblem(spec: spec, batch: batch, heads: heads, length: length, keyDim: keyDim, valueDim: valueDim,
                           q: q, k: k, v: v, decay: spec.hasDecay ? .perStep(a) : nil, scale: s,
                           initialState: state)
    }
}

/// `log(1 + eˣ)` in Double, stable for large |x| (generators only).
@inlinable
public func softplus(_ x: Double) -> Double {
    x > 0 ? x + log1p(exp(-x)) : log1p(exp(x))
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension CoreProblem {
    /// The same problem with q, k, v, the decays and the initial state rounded
    /// to `storage` — what a kernel reading that format receives. The oracle
    /// of the rounded problem is the right reference for such a kernel
    /// (inputs stored in a format are taken as exact).
    public func rounded(to storage: InputStorage) -> CoreProblem {
        var p = self
        p.q = q.map(storage.round)
        p.k = k.map(storage.round)
        p.v = v.map(storage.round)
        switch decay {
        case .perStep(let a)?: p.decay = .perStep(a.map(storage.round))
        case .prefixSum(let l)?: p.decay = .prefixSum(l.map(storage.round))
        case nil: break
        }
        if let st = initialState { p.initialState = CoreState(s: st.s.map(storage.round), z: st.z?.map(storage.round)) }
        return p
    }
}
