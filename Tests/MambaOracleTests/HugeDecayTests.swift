import Testing
import MambaOracle
import MambaPrecision
import MambaVariants

/// Finite but huge log-decays (issue "Never crash, never pass garbage", item 1).
///
/// A step `a_t ≤ −7.4·10^8` used to push the factored decay `exp(±L)` out of
/// MPFR's exponent range; the ∞·0 weights then overflowed the fixed-point
/// accumulator's exponent arithmetic (SIGILL). Such steps are well defined:
/// `exp(a_t)` is 0 to any precision, so everything before `t` is forgotten
/// exactly. The oracle must say so — checked against the *same* oracle on the
/// problem restarted at `t` (no huge decay anywhere, so it takes the factored
/// path) and on the prefix before `t`.
@Suite struct HugeDecayTests {
    static let decayCores = CoreSpec.all.filter(\.hasDecay)
    static let hugeSteps: [Double] = [-7.5e8, -1e9, -1e30, -Double.greatestFiniteMagnitude]

    let n = 11, t = 5, dk = 4, dv = 3

    /// B = 1, H = 2 with a huge step at token `t` of head 0 only (head 1 stays
    /// on the factored path, so both paths run in one call), with an initial
    /// state where the core has one (it must be forgotten too).
    func problem(_ spec: CoreSpec, huge: Double, seed: UInt64) -> CoreProblem {
        var p = CoreProblem.random(spec: spec, heads: 2, length: n, keyDim: dk, valueDim: dv,
                                   withInitialState: spec.score != .exponential, seed: seed)
        if spec.score == .reluLinear {
            // Positive features: no row with a zero normaliser (0/0 is NaN on every path).
            p.q = p.q.map(Swift.abs); p.k = p.k.map(Swift.abs)
        }
        guard case .perStep(var a)? = p.decay else { preconditionFailure("decay core") }
        a[t] = huge
        p.decay = .perStep(a)
        return p
    }

    /// Tokens `range` of head `head` as a problem of their own, with the
    /// head's initial state when `keepState`.
    func slice(_ p: CoreProblem, head: Int, tokens range: Range<Int>, keepState: Bool = false,
               decay: (ArraySlice<Double>) -> LogDecay?) -> CoreProblem {
        func rows(_ x: [Double], _ w: Int) -> [Double] {
            Array(x[(head * n + range.lowerBound) * w ..< (head * n + range.upperBound) * w])
        }
        guard case .perStep(let a)? = p.decay else { preconditionFailure() }
        var state: CoreState? = nil
        if keepState, let s = p.initialState, let f = p.featureDim {
            state = CoreState(s: Array(s.s[head * f * dv ..< (head + 1) * f * dv]),
                              z: s.z.map { Array($0[head * f ..< (head + 1) * f]) })
        }
        return CoreProblem(spec: p.spec, batch: 1, heads: 1, length: range.count, keyDim: dk, valueDim: dv,
                           q: rows(p.q, dk), k: rows(p.k, dk), v: rows(p.v, dv),
                           decay: decay(a[(head * n + range.lowerBound) ..< (head * n + range.upperBound)]),
                           scale: p.scale, initialState: state)
    }

    /// `|x − y| ≤ 1e-25·(|y| + scale)`: both sides carry ~2^−128 relative error.
    func close(_ x: BigFloat, _ y: BigFloat, scale: Double = 1) -> Bool {
        let a = x.doubleValue, b = y.doubleValue
        return a.isFinite && b.isFinite && Swift.abs(a - b) <= 1e-25 * (Swift.abs(b) + scale)
    }

    @Test(arguments: decayCores, hugeSteps)
    func thePastIsForgottenExactly(spec: CoreSpec, huge: Double) throws {
        let p = problem(spec, huge: huge, seed: 41)
        let ref = try Reference.quadratic(p, precision: 128, finalState: spec.score != .exponential)
        #expect(ref.o.allSatisfy { $0.doubleValue.isFinite }, "\(spec) a=\(huge): non-finite output")
        #expect(ref.magnitude.allSatisfy(\.isFinite) && ref.decayMagnitude.allSatisfy(\.isFinite)
                && ref.accumulationMagnitude.allSatisfy(\.isFinite), "\(spec) a=\(huge): non-finite magnitude")
        // After t: the problem restarted at t (its first step only scales a state it does not have).
        let restarted = slice(p, head: 0, tokens: t..<n) { a in .perStep([0] + a.dropFirst()) }
        let after = try Reference.quadratic(restarted, precision: 128, finalState: spec.score != .exponential)
        for i in 0..<(n - t) * dv {
            #expect(close(ref.o[t * dv + i], after.o[i]), "\(spec) a=\(huge): o[\(t * dv + i)] \(ref.o[t * dv + i].doubleValue) vs restarted \(after.o[i].doubleValue)")
        }
        // Before t: causality, the prefix problem alone.
        let prefix = slice(p, head: 0, tokens: 0..<t, keepState: true) { a in .perStep(Array(a)) }
        let before = try Reference.quadratic(prefix, precision: 128)
        for i in 0..<t * dv { #expect(close(ref.o[i], before.o[i]), "\(spec) a=\(huge): o[\(i)] before t") }
        // Head 1 (ordinary decays) is unaffected by head 0's huge step.
        var other = p
        other.heads = 1
        other.q = Array(p.q[(n * dk)...]); other.k = Array(p.k[(n * dk)...]); other.v = Array(p.v[(n * dv)...])
        guard case .perStep(let a)? = p.decay else { return }
        other.decay = .perStep(Array(a[n...]))
        if let s = p.initialState, let f = p.featureDim {
            other.initialState = CoreState(s: Array(s.s[(f * dv)...]), z: s.z.map { Array($0[f...]) })
        }
        let head1 = try Reference.quadratic(other, precision: 128)
        for i in 0..<n * dv { #expect(ref.o[n * dv + i] == head1.o[i], "\(spec): head 1 changed at \(i)") }
        // The final state forgets the initial state and every token before t.
        if let fs = ref.finalStateS, let f = p.featureDim, let rs = after.finalStateS {
            for e in 0..<f * dv { #expect(close(fs[e], rs[e]), "\(spec) a=\(huge): final_state[\(e)]") }
            if let fz = ref.finalStateZ, let rz = after.finalStateZ {
                for e in 0..<f { #expect(close(fz[e], rz[e]), "\(spec) a=\(huge): final_state_z[\(e)]") }
            }
        }
    }

    /// The prefix-sum input (`a_cumsum`) with `|L| = 2^40` on the second
    /// half: only differences matter, which the pairwise path forms exactly.
    @Test(arguments: decayCores)
    func hugePrefixSumsUseOnlyTheirDifferences(spec: CoreSpec) throws {
        var p = CoreProblem.random(spec: spec, length: n, keyDim: dk, valueDim: dv, seed: 43)
        if spec.score == .reluLinear { p.q = p.q.map(Swift.abs); p.k = p.k.map(Swift.abs) }
        guard case .perStep(let a)? = p.decay else { return }
        // Prefix sums on a 2^−12 grid (exact in Double next to 2^40).
        var l = [Double](), acc = 0.0
        for x in a { acc += (x * 4096).rounded() / 4096; l.append(acc) }
        p.decay = .prefixSum(l)
        var shifted = p
        shifted.decay = .prefixSum(l.map { $0 - 0x1p40 })
        let small = try Reference.quadratic(p, precision: 128)
        let huge = try Reference.quadratic(shifted, precision: 128)
        for i in 0..<n * dv { #expect(close(huge.o[i], small.o[i]), "\(spec): o[\(i)]") }
    }

    /// Gradients with a huge step: finite, and split exactly at t like the outputs.
    @Test(arguments: decayCores, [-1e9, -1e30])
    func gradientsForgetThePastToo(spec: CoreSpec, huge: Double) throws {
        var p = problem(spec, huge: huge, seed: 47)
        p.initialState = nil
        p.heads = 1
        p.q = Array(p.q[..<(n * dk)]); p.k = Array(p.k[..<(n * dk)]); p.v = Array(p.v[..<(n * dv)])
        guard case .perStep(let a)? = p.decay else { return }
        p.decay = .perStep(Array(a[..<n]))
        let g = GradientProblem.random(core: p, seed: 5)
        let ref = try Reference.gradients(g, precision: 128)
        let all = ref.dq + ref.dk + ref.dv + (ref.da ?? []) + (ref.dL ?? [])
        #expect(all.allSatisfy { $0.doubleValue.isFinite }, "\(spec) a=\(huge): non-finite gradient")
        let scale = all.map { Swift.abs($0.doubleValue) }.max() ?? 1
        // Restarted at t.
        let restartedCore = slice(p, head: 0, tokens: t..<n) { a in .perStep([0] + a.dropFirst()) }
        let after = try Reference.gradients(GradientProblem(core: restartedCore, dO: Array(g.dO[(t * dv)...])),
                                            precision: 128)
        for i in 0..<(n - t) * dk {
            #expect(close(ref.dq[t * dk + i], after.dq[i], scale: scale), "\(spec) a=\(huge): dq[\(t * dk + i)]")
            #expect(close(ref.dk[t * dk + i], after.dk[i], scale: scale), "\(spec) a=\(huge): dk[\(t * dk + i)]")
        }
        for i in 0..<(n - t) * dv {
            #expect(close(ref.dv[t * dv + i], after.dv[i], scale: scale), "\(spec) a=\(huge): dv[\(t * dv + i)]")
        }
        if let da = ref.da, let da2 = after.da {
            // da_u for u > t; da_t itself is Σ_{u≥t} dL_u = 0 in both (up to cancellation noise).
            for u in 0..<(n - t) { #expect(close(da[t + u], da2[u], scale: scale), "\(spec) a=\(huge): da[\(t + u)]") }
        }
        // The prefix before t.
        let prefixCore = slice(p, head: 0, tokens: 0..<t) { a in .perStep(Array(a)) }
        let before = try Reference.gradients(GradientProblem(core: prefixCore, dO: Array(g.dO[..<(t * dv)])),
                                             precision: 128)
        for i in 0..<t * dk {
            #expect(close(ref.dq[i], before.dq[i], scale: scale), "\(spec) a=\(huge): dq[\(i)] before t")
            #expect(close(ref.dk[i], before.dk[i], scale: scale), "\(spec) a=\(huge): dk[\(i)] before t")
        }
    }

    /// The recurrent and chunked oracle forms (per-step `exp(a_t)`) agree with
    /// the quadratic form's pairwise path.
    @Test(arguments: decayCores.filter { $0.score != .exponential })
    func formsAgreeOnAHugeStep(spec: CoreSpec) throws {
        let p = problem(spec, huge: -1e30, seed: 53)
        let quad = try Reference.quadratic(p, precision: 128)
        let rec = try Reference.recurrent(p, precision: 128)
        let chunk = try Reference.chunked(p, chunkSize: 4, precision: 128)
        for i in 0..<quad.o.count {
            #expect(close(rec.o[i], quad.o[i], scale: 1e-3), "\(spec): recurrent o[\(i)]")
            #expect(close(chunk.o[i], quad.o[i], scale: 1e-3), "\(spec): chunked o[\(i)]")
        }
    }

    /// A non-finite scale is refused by validation instead of reaching the
    /// fixed-point accumulator; absurd dimensions are refused without trapping.
    @Test func nonFiniteScaleAndAbsurdSizesAreRefused() {
        var p = CoreProblem.random(spec: CoreSpec(score: .squared, hasDecay: true, normalization: .sum),
                                   length: 4, keyDim: 2, valueDim: 2, seed: 1)
        for s in [Double.nan, .infinity, -.infinity] {
            p.scale = s
            #expect(throws: ReferenceError.self) { try Reference.quadratic(p) }
        }
        let empty = CoreProblem(spec: CoreSpec(score: .squared, hasDecay: false, normalization: .none),
                                batch: 1 << 40, heads: 1 << 40, length: 0, keyDim: 16, valueDim: 16,
                                q: [], k: [], v: [], decay: nil)
        #expect(empty.validationError()?.contains("too large") == true)
        let wide = CoreProblem(spec: CoreSpec(score: .squared, hasDecay: false, normalization: .none),
                               batch: 1, heads: 1, length: 0, keyDim: Int(UInt32.max), valueDim: Int.max / 2,
                               q: [], k: [], v: [], decay: nil)
        #expect(wide.validationError()?.contains("too large") == true)
    }
}
