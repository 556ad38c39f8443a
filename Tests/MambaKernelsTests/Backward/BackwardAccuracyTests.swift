import Foundation
import Testing
import MambaKernels
import MambaOracle
import MambaPrecision
import MambaVariants
import MambaVerification
import _MambaTestSupport

/// Every backward form × every core × float32, float16-acc32 and float16
/// against the MPFR gradient oracle (`Reference.gradients`, 128 bits),
/// within the derived bound of `BackwardBound` (the verdict with no
/// baselines: `|ŷ − y| ≤ 2 ulp + boundFactor·u_F·m_e`, elementwise and
/// normwise). Shapes: B = 1, H = 2, N = 37, dk = 4, dv = 3, chunks and
/// tiles of 8 (ragged last block), an initial state for every core that has
/// one; the recurrent form is the chunked backward with chunks of one token.
@Suite("Backward kernels: accuracy against the MPFR gradient oracle")
struct BackwardAccuracyTests {
    static let modes: [PrecisionMode] = [.float32, .float16Acc32, .float16]
    static let options = KernelOptions(chunkSize: 8, tileSize: 8)

    @Test(arguments: CoreSpec.all)
    func everyFormAndModeWithinDerivedBound(spec: CoreSpec) throws {
        let base = 31_000 + 10 * UInt64(CoreSpec.all.firstIndex(of: spec)!)
        for seed in TestSupport.seeds(1, base: base) {
            var oracles: [String: (GradientProblem, ReferenceGradients)] = [:]
            for mode in Self.modes {
                let storage: InputStorage = mode == .float32 ? .float32 : .float16
                let key = mode == .float16 ? "float16-scaled-decay" : storage.rawValue  // pure half: own problem
                if oracles[key] == nil {
                    let g = BackwardProblems.make(spec, storage: storage, length: 37, initialState: true,
                                                  decayScale: mode == .float16 ? 1.0 / 16 : 1, seed: seed)
                    oracles[key] = (g, try Reference.gradients(g, precision: 128))
                }
                let (g, oracle) = oracles[key]!
                #expect(oracle.zeroDenominatorRows.isEmpty, "seed \(seed) \(spec.name): zero normaliser in the test problem")
                let mags = BackwardBound.magnitudes(g, mode)
                let policy = VerdictPolicy(factor: 2, ulpAllowance: 2, boundFactor: BackwardBound.boundFactor(mode, g.core))
                for form in KernelForm.allCases {
                    let out = try CoreBackward.run(g, form: form, mode: mode, options: Self.options)
                    #expect(out.diagnostics.isEmpty, "seed \(seed) \(spec.name) \(form) \(mode): \(out.diagnostics)")
                    #expect((out.dL != nil) == spec.hasDecay && (out.da != nil) == spec.hasDecay)
                    #expect((out.dInitialState != nil) == spec.score.hasFeatureMap)
                    let checks = try BackwardChecks.compare(out, oracle, mags, g, mode: mode, policy: policy)
                    let label = "seed \(seed) \(spec.name) \(form.rawValue) \(mode.rawValue) (boundFactor \(Int(policy.boundFactor)))"
                    print("\(label): " + checks.map(\.description).joined(separator: "; "))
                    for c in checks { #expect(c.passed, "\(label): \(c)") }
                }
            }
        }
    }

    /// The magnitudes bound the oracle's gradients (`|y| ≤ m`, as a sum of
    /// absolute terms bounds the sum), so `m/|y|` is a condition number ≥ 1.
    @Test(arguments: CoreSpec.all)
    func magnitudesBoundTheGradients(spec: CoreSpec) throws {
        let seed: UInt64 = 32_000 + UInt64(CoreSpec.all.firstIndex(of: spec)!)
        let g = BackwardProblems.make(spec, storage: .float32, length: 23, initialState: true, seed: seed)
        let oracle = try Reference.gradients(g, precision: 128)
        let m = BackwardBound.magnitudes(g, .float32)
        var pairs: [(String, [BigFloat], [Double])] = [("dq", oracle.dq, m.dq), ("dk", oracle.dk, m.dk), ("dv", oracle.dv, m.dv)]
        if let d = oracle.dL { pairs.append(("dL", d, m.dL!)) }
        if let d = oracle.da { pairs.append(("da", d, m.da!)) }
        if let d = oracle.dInitialState { pairs.append(("dS0", d, m.dInitialState!)) }
        if let d = oracle.dInitialStateZ { pairs.append(("dz0", d, m.dInitialStateZ!)) }
        for (name, y, mag) in pairs {
            #expect(y.count == mag.count)
            var worst = 0.0
            for (a, b) in zip(y, mag) {
                let v = abs(a.doubleValue)
                #expect(v <= b * (1 + 1e-12) + 1e-300, "seed \(seed) \(spec.name) \(name): |y| = \(v) > m = \(b)")
                if b > 0 { worst = max(worst, v / b) }
            }
            print("seed \(seed) \(spec.name) \(name): max |y|/m = \(worst)")
        }
    }

    /// The magnitudes are not inflated: on small un-normalised problems
    /// without a state, `m` of `GradientComparison.magnitudes` (as the
    /// backward tests use it, `storage + accumulation` with global-prefix
    /// decay conditioning) is at most an independent evaluation written here
    /// from the gradient formulas, term by term, and at least `|y|` of the
    /// MPFR oracle. The independent evaluation expands each gradient into
    /// products of inputs and sums their absolute values, with each term's
    /// first-order sensitivities to the roundings a kernel makes inside it:
    ///
    /// - `dv_jc = Σ_{i≥j} w_ij dO_ic`, `dq_id = Σ_{j≤i} s·f'(X_ij)Γ_ij (dO_i·v_j) k_jd`,
    ///   `dk_jd = Σ_{i≥j} s·f'(X_ij)Γ_ij (dO_i·v_j) q_id`, with
    ///   `X_ij = s Σ_e q_ie k_je`, `w = f(X)Γ`, `Γ_ij = e^{L_i − L_j}`;
    /// - the score expanded over its `dk` products: `|f(X)| → A`, `A²` for
    ///   linear, squared (`A = s Σ_e|q_ie k_je|`), and `|f'| → 1`, `2A`;
    ///   the exponential score cannot be expanded, its argument's rounding
    ///   is a relative `A` on `e^X`: `|w| → |w|(1 + A)`, `|f'| → |w|(1 + A)`;
    /// - `dO·v` expanded: `Σ_c |dO_ic v_jc|`;
    /// - the decay `e^{L_i − L_j}` with the exponent formed from global
    ///   prefix sums: relative `|L_i| + |L_j|` per term, i.e. a factor
    ///   `(1 + Λ_ij)` on the terms through Γ (a factor, since an expanded
    ///   product's sensitivities add: `Γ·(1 + Λ)`; for the exponential
    ///   score `|w|(1 + A + Λ)`).
    ///
    /// Every term of the production formula is then ≤ its counterpart here
    /// (it uses `|G_ij| ≤ Σ_c|dO_ic v_jc|` and `|X| ≤ A` where it keeps the
    /// exact value), so `m ≤ m_indep` with `c = 1` up to Double summation
    /// order (`1e-12` relative); without decay `dv` is equal up to that order. A
    /// magnitude inflated by any factor above that fails. The sum-normalised
    /// cores carry conditions of the normaliser that this expansion does not
    /// reach; they keep the `|y| ≤ m` check above.
    @Test(arguments: CoreSpec.all.filter { $0.normalization == .none })
    func magnitudesMatchAnIndependentTermSum(spec: CoreSpec) throws {
        let seed: UInt64 = 33_000 + UInt64(CoreSpec.all.firstIndex(of: spec)!)
        let g = BackwardProblems.make(spec, storage: .float32, heads: 2, length: 9, keyDim: 3, valueDim: 2,
                                      initialState: false, seed: seed)
        let p = g.core, n = p.length, dk = p.keyDim, dv = p.valueDim, s = p.scale
        let oracle = try Reference.gradients(g, precision: 128)
        let m = BackwardBound.magnitudes(g, .float32)
        var iq = [Double](repeating: 0, count: p.q.count), ik = iq, iv = [Double](repeating: 0, count: p.v.count)
        for seq in 0..<p.sequences {
            // Prefix sums in Double straight from the inputs (not `prefixSums`).
            var L = [Double](repeating: 0, count: n)
            switch p.decay {
            case .perStep(let a)?: var acc = 0.0; for t in 0..<n { acc += a[seq * n + t]; L[t] = acc }
            case .prefixSum(let l)?: for t in 0..<n { L[t] = l[seq * n + t] }
            case nil: break
            }
            let relu = spec.score == .reluLinear
            func q(_ i: Int, _ d: Int) -> Double { let x = p.q[(seq * n + i) * dk + d]; return relu ? max(x, 0) : x }
            func k(_ j: Int, _ d: Int) -> Double { let x = p.k[(seq * n + j) * dk + d]; return relu ? max(x, 0) : x }
            for i in 0..<n {
                for j in 0...i {
                    var x = 0.0, a = 0.0
                    for e in 0..<dk { x += q(i, e) * k(j, e); a += abs(q(i, e) * k(j, e)) }
                    x *= s; a *= s
                    let gamma = exp(L[i] - L[j]), lambda = spec.hasDecay ? abs(L[i]) + abs(L[j]) : 0
                    // Expanded |w| and |f'| with their sensitivities.
                    let wTerms: Double, fTerms: Double
                    switch spec.score {
                    case .linear, .reluLinear: wTerms = a * gamma * (1 + lambda); fTerms = gamma * (1 + lambda)
                    case .squared: wTerms = a * a * gamma * (1 + lambda); fTerms = 2 * a * gamma * (1 + lambda)
                    case .exponential:
                        let w = exp(x) * gamma
                        wTerms = w * (1 + a + lambda); fTerms = wTerms
                    }
                    var gTerms = 0.0
                    for c in 0..<dv { gTerms += abs(g.dO[(seq * n + i) * dv + c] * p.v[(seq * n + j) * dv + c]) }
                    for c in 0..<dv { iv[(seq * n + j) * dv + c] += wTerms * abs(g.dO[(seq * n + i) * dv + c]) }
                    for d in 0..<dk {
                        // ReLU: the gradient of a clamped entry is exactly 0 (no terms).
                        if !relu || p.q[(seq * n + i) * dk + d] > 0 { iq[(seq * n + i) * dk + d] += s * fTerms * gTerms * abs(k(j, d)) }
                        if !relu || p.k[(seq * n + j) * dk + d] > 0 { ik[(seq * n + j) * dk + d] += s * fTerms * gTerms * abs(q(i, d)) }
                    }
                }
            }
        }
        for (name, y, mag, indep) in [("dq", oracle.dq, m.dq, iq), ("dk", oracle.dk, m.dk, ik), ("dv", oracle.dv, m.dv, iv)] {
            #expect(y.count == mag.count && mag.count == indep.count)
            var lo = Double.infinity, hi = 0.0
            for e in mag.indices {
                let v = abs(y[e].doubleValue)
                #expect(v <= mag[e] * (1 + 1e-12) + 1e-300, "\(spec.name) \(name)[\(e)]: |y| = \(v) > m = \(mag[e])")
                #expect(mag[e] <= indep[e] * (1 + 1e-12) + 1e-300,
                        "\(spec.name) \(name)[\(e)]: m = \(mag[e]) exceeds the independent term sum \(indep[e])")
                if indep[e] > 0 { lo = min(lo, mag[e] / indep[e]); hi = max(hi, mag[e] / indep[e]) }
            }
            print("seed \(seed) \(spec.name) \(name): m / independent term sum in [\(lo), \(hi)]")
            // Without decay, dv's terms are the production's exactly (no |G|,
            // |X| or |w|Λ shortcut): the two evaluations must agree.
            if name == "dv" && !spec.hasDecay { #expect(lo >= 1 - 1e-12, "\(spec.name) dv: m / independent = \(lo) < 1") }
        }
    }
}
