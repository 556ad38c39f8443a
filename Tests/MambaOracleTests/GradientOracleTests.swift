import Testing
import MambaOracle
import MambaPrecision
import MambaVariants
import _MambaTestSupport

/// The gradient oracle checks itself (docs/MATH.md §5): the analytic backward pass in
/// MPFR against central differences of the forward at 512 bits, for every
/// core, and the paper's literal C.5 decay gradient as a negative example.
///
/// Case generation. Shapes are small (N ≤ 6, dk ≤ 3, dv ≤ 2, B·H ≤ 2); inputs
/// come from `CoreProblem.random` (Float32-rounded N(0, 0.5²), per-step
/// decays) and a seeded `dO`. For relu-linear the first entry of every q and
/// k row is made positive (≥ 2^−20): this keeps every input at least 2^80
/// steps `h` away from ReLU's kink (where a central difference averages the
/// one-sided slopes while the oracle uses ReLU'(0) = 0) and keeps every
/// sum-normalised row's normaliser positive (q̃_i·k̃_j ≥ q̃_i0·k̃_j0 > 0),
/// while the other entries keep random signs so the ReLU mask is exercised.
/// The kink and the zero normaliser have their own tests below.
///
/// Agreement is measured norm-wise per tensor (`GradientDiscrepancy`); the
/// central differences' own error is about 2^−200 (truncation `h²` with
/// `h = 2^−100`), so ~200 bits is the most that can be observed.
@Suite struct GradientOracleTests {
    /// Required agreement of the 256-bit analytic gradients with the
    /// 512-bit central differences (whose own error is ~2^−200).
    static let requiredBits = 100.0

    static func shape(seed: UInt64, largest: Bool) -> (b: Int, h: Int, n: Int, dk: Int, dv: Int) {
        if largest { return (1, 2, 6, 3, 2) }
        var g = SeededGenerator(seed: seed)
        let bh = [(1, 1), (1, 2), (2, 1)][Int(g.next() % 3)]
        return (bh.0, bh.1, 1 + Int(g.next() % 6), 1 + Int(g.next() % 3), 1 + Int(g.next() % 2))
    }

    /// A random gradient problem as described in the suite's comment.
    static func problem(_ spec: CoreSpec, seed: UInt64, withState: Bool, largest: Bool,
                        decay: (([Double]) -> [Double])? = nil) -> GradientProblem {
        let s = shape(seed: seed, largest: largest)
        var core = CoreProblem.random(spec: spec, batch: s.b, heads: s.h, length: s.n, keyDim: s.dk, valueDim: s.dv,
                                      withInitialState: withState, seed: seed)
        if spec.score == .reluLinear {
            for row in 0..<(core.sequences * s.n) {
                core.q[row * s.dk] = max(abs(core.q[row * s.dk]), 0x1p-20)
                core.k[row * s.dk] = max(abs(core.k[row * s.dk]), 0x1p-20)
            }
            for e in 0..<core.q.count where abs(core.q[e]) < 0x1p-20 { core.q[e] = 0.25 }
            for e in 0..<core.k.count where abs(core.k[e]) < 0x1p-20 { core.k[e] = -0.25 }
        }
        if let decay, case .perStep(let a)? = core.decay { core.decay = .perStep(decay(a)) }
        return GradientProblem.random(core: core, seed: seed)
    }

    static func describe(_ g: GradientProblem) -> String {
        let c = g.core
        return "\(c.spec.name) B=\(c.batch) H=\(c.heads) N=\(c.length) dk=\(c.keyDim) dv=\(c.valueDim)"
            + " state=\(c.initialState != nil)"
    }

    /// Analytic at 256 bits vs central differences at 512 bits; returns the
    /// discrepancies (printed, pass or fail).
    @discardableResult
    static func checkAgainstFiniteDifferences(_ g: GradientProblem, seed: UInt64) throws -> [GradientDiscrepancy] {
        let analytic = try Reference.gradients(g, precision: 256)
        let fd = try Reference.finiteDifferenceGradients(g, precision: 512, stepExponent: -100)
        // Norm-wise per tensor, with an absolute floor 2^-64 × the largest gradient
        // of the problem for tensors that vanish identically (dq of relu-linear sum
        // with dk = 1 is exactly 0: the output is invariant to the scale of q̃).
        let d = analytic.discrepancies(against: fd, floor: 0x1p-64 * fd.largestMagnitude)
        let summary = d.map { "\($0.name) \(String(format2($0.agreedBits)))" }.joined(separator: ", ")
        print("gradient oracle seed \(seed) \(describe(g)): bits \(summary)")
        #expect(analytic.zeroDenominatorRows.isEmpty, "seed \(seed) \(describe(g)): zero normaliser rows")
        for x in d {
            #expect(x.agreedBits >= requiredBits, "seed \(seed) \(describe(g)): \(x)")
        }
        // Every gradient the problem has must be present.
        let c = g.core
        #expect((analytic.dL != nil) == c.spec.hasDecay && (analytic.da != nil) == c.spec.hasDecay)
        #expect((analytic.dInitialState != nil) == (c.initialState != nil), "seed \(seed)")
        #expect((analytic.dInitialStateZ != nil) == (c.initialState != nil && c.spec.normalization == .sum))
        return d
    }

    static func format2(_ x: Double) -> String {
        x.isInfinite ? (x > 0 ? "exact" : "-inf") : String(Int(x.rounded(.down)))
    }

    @Test(arguments: CoreSpec.all)
    func analyticMatchesCentralDifferences(spec: CoreSpec) throws {
        let base = 7000 + 100 * UInt64(CoreSpec.all.firstIndex(of: spec)!)
        let states = spec.score.hasFeatureMap ? [false, true] : [false]
        var worst = Double.infinity
        for (c, seed) in TestSupport.seeds(3, base: base).enumerated() {
            for withState in states {
                let g = Self.problem(spec, seed: seed, withState: withState, largest: c == 0)
                let d = try Self.checkAgainstFiniteDifferences(g, seed: seed)
                worst = min(worst, d.map(\.agreedBits).min() ?? .infinity)
            }
        }
        print("gradient oracle \(spec.name): minimum agreement \(Self.format2(worst)) bits")
    }

    /// Longer sequences (beyond the reach of finite differences): the
    /// analytic oracle at 128 bits agrees with itself at 256 bits, i.e. its
    /// formulas lose no more than a few bits to cancellation at N = 40.
    @Test(arguments: CoreSpec.all)
    func analyticIsStableAcrossPrecisions(spec: CoreSpec) throws {
        let seed: UInt64 = 9000 + UInt64(CoreSpec.all.firstIndex(of: spec)!)
        var core = CoreProblem.random(spec: spec, length: 40, keyDim: 4, valueDim: 3,
                                      withInitialState: spec.score.hasFeatureMap, seed: seed)
        if spec.score == .reluLinear {
            for row in 0..<40 { core.q[row * 4] = max(abs(core.q[row * 4]), 0x1p-20); core.k[row * 4] = max(abs(core.k[row * 4]), 0x1p-20) }
        }
        let g = GradientProblem.random(core: core, seed: seed)
        let lo = try Reference.gradients(g, precision: 128)
        let hi = try Reference.gradients(g, precision: 256)
        let d = lo.discrepancies(against: hi, floor: 0x1p-64 * hi.largestMagnitude)
        print("gradient oracle 128 vs 256 bits seed \(seed) \(spec.name) N=40: "
              + d.map { "\($0.name) \(Self.format2($0.agreedBits))" }.joined(separator: ", "))
        for x in d { #expect(x.agreedBits >= 100, "seed \(seed) \(spec.name): \(x)") }
    }

    /// The decay given as prefix sums `L` (a kernel's `A_cumsum`) instead of per-step `a`.
    @Test(arguments: [CoreSpec(score: .linear, hasDecay: true, normalization: .none),
                      CoreSpec(score: .squared, hasDecay: true, normalization: .sum),
                      CoreSpec(score: .exponential, hasDecay: true, normalization: .sum)])
    func prefixSumDecayInput(spec: CoreSpec) throws {
        for seed in TestSupport.seeds(2, base: 8100) {
            var g = Self.problem(spec, seed: seed, withState: spec.score.hasFeatureMap, largest: true)
            g.core.decay = .prefixSum((0..<g.core.sequences).flatMap { g.core.prefixSums(sequence: $0)! })
            try Self.checkAgainstFiniteDifferences(g, seed: seed)
        }
    }

    /// The minimal forward behind the finite differences is the oracle's forward.
    @Test(arguments: CoreSpec.all)
    func finiteDifferenceForwardMatchesQuadraticOracle(spec: CoreSpec) throws {
        let seed: UInt64 = 8200 + UInt64(CoreSpec.all.firstIndex(of: spec)!)
        let g = Self.problem(spec, seed: seed, withState: spec.score.hasFeatureMap, largest: true)
        let o = try Reference.quadratic(g.core, precision: 256).o
        let loss = BigFloat(0, precision: 512), scale = BigFloat(0, precision: 512)
        for (y, d) in zip(o, g.dO) {
            let t = y * BigFloat(d, precision: 512)
            loss.add(t)
            scale.add(BigFloat.abs(t))
        }
        let mine = try Reference.gradientLoss(g, precision: 512)
        let rel = ((mine - loss) / scale).doubleValue.magnitude
        print("gradient loss seed \(seed) \(Self.describe(g)): relative difference \(rel)")
        #expect(rel <= 0x1p-200, "seed \(seed) \(Self.describe(g)): loss differs by \(rel) relative to Σ|O·dO|")
    }

    /// docs/MATH.md §5: the literal C.5 decay gradient counts Γ twice and must be
    /// rejected by the derivative-free check, while the corrected one passes.
    @Test(arguments: [CoreSpec(score: .reluLinear, hasDecay: true, normalization: .sum),
                      CoreSpec(score: .squared, hasDecay: true, normalization: .sum),
                      CoreSpec(score: .exponential, hasDecay: true, normalization: .sum)])
    func paperC5LiteralDecayGradientIsRejected(spec: CoreSpec) throws {
        for seed in TestSupport.seeds(2, base: 8300) {
            for withState in spec.score.hasFeatureMap ? [false, true] : [false] {
                let g = Self.problem(spec, seed: seed, withState: withState, largest: true)
                let fd = try Reference.finiteDifferenceGradients(g)
                let corrected = try Reference.gradients(g, precision: 256)
                let literal = try Reference.gradientsPaperC5Literal(g, precision: 256)
                let good = corrected.discrepancies(against: fd)
                let bad = literal.discrepancies(against: fd)
                for name in ["dL", "da"] {
                    let b = bad.first { $0.name == name }!, ok = good.first { $0.name == name }!
                    print("C.5 literal seed \(seed) \(Self.describe(g)): \(name) relative error \(b.relativeError)"
                          + " (\(Self.format2(b.agreedBits)) bits); corrected \(Self.format2(ok.agreedBits)) bits")
                    #expect(b.relativeError > 0.05,
                            "seed \(seed) \(Self.describe(g)): C.5 literal \(name) should be far off, is \(b)")
                    #expect(ok.agreedBits >= Self.requiredBits, "seed \(seed) \(Self.describe(g)): corrected \(ok)")
                }
                // Everything else is the corrected oracle's, bit for bit. The
                // state gradients exist only with a state: a missing tensor fails.
                let same = literal.discrepancies(against: corrected)
                for name in ["dq", "dk", "dv"] + (withState ? ["dInitialState", "dInitialStateZ"] : []) {
                    let x = try #require(same.first(where: { $0.name == name }), "seed \(seed): no \(name) compared")
                    #expect(x.relativeError == 0, "seed \(seed): \(x)")
                }
            }
        }
    }

    /// Without decay in effect (all a_t = 0, Γ ≡ 1) the literal formula and
    /// the corrected one coincide: the C.5 error is exactly the second Γ.
    @Test func paperC5LiteralAgreesWhenDecayIsOne() throws {
        let spec = CoreSpec(score: .squared, hasDecay: true, normalization: .sum)
        let seed: UInt64 = 8400
        let g = Self.problem(spec, seed: seed, withState: false, largest: true) { a in a.map { _ in 0 } }
        let corrected = try Reference.gradients(g, precision: 256)
        let literal = try Reference.gradientsPaperC5Literal(g, precision: 256)
        for x in literal.discrepancies(against: corrected) {
            #expect(x.agreedBits >= 200, "seed \(seed): \(x)")
        }
    }

    @Test func paperC5LiteralRejectsOtherCores() {
        for spec in CoreSpec.all where !(spec.hasDecay && spec.normalization == .sum) {
            let g = Self.problem(spec, seed: 8500, withState: false, largest: false)
            #expect(throws: ReferenceError.self) { try Reference.gradientsPaperC5Literal(g) }
        }
    }

    /// relu-linear at the kink: ReLU'(0) = 0, so a q or k entry exactly 0
    /// receives no gradient (the documented choice).
    @Test func reluDerivativeAtZeroIsZero() throws {
        for norm in Normalization.allCases {
            let spec = CoreSpec(score: .reluLinear, hasDecay: true, normalization: norm)
            var g = Self.problem(spec, seed: 8600, withState: true, largest: true)
            let dk = g.core.keyDim
            // second entry of row 2 (q) and row 1 (k) exactly zero; first entries stay positive
            g.core.q[2 * dk + 1] = 0
            g.core.k[1 * dk + 1] = 0
            let r = try Reference.gradients(g, precision: 256)
            #expect(r.dq[2 * dk + 1].isZero && r.dk[1 * dk + 1].isZero, "\(spec.name)")
            // and entries below zero get none either
            for e in 0..<g.core.q.count where g.core.q[e] < 0 { #expect(r.dq[e].isZero) }
            for e in 0..<g.core.k.count where g.core.k[e] < 0 { #expect(r.dk[e].isZero) }
        }
    }

    /// A row whose ReLU features all vanish has normaliser 0: reported, NaN, no epsilon.
    @Test func zeroNormaliserIsReported() throws {
        let spec = CoreSpec(score: .reluLinear, hasDecay: false, normalization: .sum)
        var g = Self.problem(spec, seed: 8700, withState: false, largest: true)
        let dk = g.core.keyDim
        for d in 0..<dk { g.core.q[0 * dk + d] = -abs(g.core.q[d]) - 0.125 }  // row 0 of sequence 0
        let r = try Reference.gradients(g, precision: 128)
        #expect(r.zeroDenominatorRows == [0])
        #expect(r.dv[0].isNaN)
        #expect(!r.dv[r.dv.count - 1].isNaN, "the other sequence is unaffected")
    }

    @Test func invalidProblemsThrow() {
        let spec = CoreSpec(score: .linear, hasDecay: false, normalization: .none)
        var g = Self.problem(spec, seed: 8800, withState: false, largest: true)
        g.dO.removeLast()
        #expect(throws: ReferenceError.self) { try Reference.gradients(g) }
        #expect(throws: ReferenceError.self) { try Reference.finiteDifferenceGradients(g) }
    }
}
