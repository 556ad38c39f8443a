import Testing
@testable import MambaOracle
import MambaPrecision
import MambaVariants
import _MambaTestSupport

/// Certified gradients (Proofs/T7, "Gradients"): every gradient enclosure
/// must contain the independent central differences of the forward
/// (`Reference.finiteDifferenceGradients` at 512 bits, step 2⁻¹⁰⁰: an
/// evaluation of docs/MATH.md §1 that shares no formula with the gradients,
/// Proofs/T11), whose own error is below `2⁻¹⁹⁰·max|∇|` (truncation `h² = 2⁻²⁰⁰`
/// times third derivatives of the size of the gradients, plus `2⁻⁵¹²/h`
/// rounding: measured ≥ 100 bits agreement in `GradientOracleTests`, and 2⁻¹⁹⁰
/// leaves ten bits for the third-derivative factor).
@Suite struct CertifiedGradientTests {
    static let specs = CoreSpec.all

    /// Elements whose enclosure misses `[fd − tol, fd + tol]`, and checks of the decided values.
    @discardableResult
    static func check(_ g: GradientProblem, label: String, expectComplete: Bool = true) throws -> Int {
        let (c, zero) = try Reference.certifiedGradients(g)
        let fd = try Reference.finiteDifferenceGradients(g, precision: 512, stepExponent: -100)
        #expect(zero.isEmpty, "\(label)")
        let tol = BigFloat(0x1p-190 * fd.largestMagnitude, precision: 1024)
        var missed = 0
        #expect(c.named.map(\.name) == fd.named.map(\.name), "\(label)")
        for ((name, cert), (_, ref)) in zip(c.named, fd.named) {
            if expectComplete { #expect(cert.isComplete, "\(label) \(name): \(cert.undecided)") }
            #expect(cert.o.count == ref.count)
            for e in 0..<ref.count {
                let lo = BigFloat(ref[e], precision: 1024) - tol, hi = BigFloat(ref[e], precision: 1024) + tol
                // The enclosure [lower, upper] must meet [fd − tol, fd + tol] (which holds the exact value).
                if cert.upper[e] < lo || hi < cert.lower[e] { missed += 1 }
                // Where the exact value's rounding is fixed by the finite difference, it is the certified value.
                if !cert.o[e].isNaN, lo.doubleValue == hi.doubleValue {
                    #expect(cert.o[e] == lo.doubleValue, "\(label) \(name)[\(e)]")
                }
            }
        }
        #expect(missed == 0, "\(label): \(missed) enclosure(s) miss the independent gradient")
        return missed
    }

    /// Random problems (N = 6, dk = 3, dv = 2, two heads; see
    /// `GradientOracleTests.problem`), with and without an initial state,
    /// the scale exactly `1/√3`: every gradient certified and correct.
    @Test(arguments: specs)
    func randomGradientsAreCorrectlyRounded(spec: CoreSpec) throws {
        let base = 8100 + 10 * UInt64(CoreSpec.all.firstIndex(of: spec)!)
        for withState in spec.score.hasFeatureMap ? [false, true] : [false] {
            var g = GradientOracleTests.problem(spec, seed: base + (withState ? 1 : 0), withState: withState, largest: true)
            g.core.scaleSpec = .inverseSquareRoot(keyDim: g.core.keyDim)
            try Self.check(g, label: "\(spec.name) state=\(withState)")
        }
    }

    /// Closed form: `linear-nodecay-none`, one token, scale 1, small integers:
    /// `O = (q·k)·v`, so `dv = (q·k)·dO`, `dq = (v·dO)·k`, `dk = (v·dO)·q`, all exact integers.
    @Test func oneTokenLinearIsExact() throws {
        let spec = CoreSpec(score: .linear, hasDecay: false, normalization: .none)
        let q: [Double] = [1, -2, 3], k: [Double] = [2, 1, -1], v: [Double] = [3, -5], dO: [Double] = [7, 2]
        let core = CoreProblem(spec: spec, batch: 1, heads: 1, length: 1, keyDim: 3, valueDim: 2,
                               q: q, k: k, v: v, decay: nil, scaleSpec: OracleScale(decimal: "1"))
        let (c, _) = try Reference.certifiedGradients(GradientProblem(core: core, dO: dO))
        let qk = -3.0, vdo = 11.0
        #expect(c.dv.o == dO.map { qk * $0 })
        #expect(c.dq.o == k.map { vdo * $0 })
        #expect(c.dk.o == q.map { vdo * $0 })
        #expect(c.named.allSatisfy { $0.values.isComplete })
    }

    /// Closed form: one token of a sum-normalised core gives `O_0 = v_0`, so
    /// `dv = dO`, and `dq = dk = dL = da = 0` exactly; the identities
    /// `δ_0 = G_00` and `da_0 = 0` make them decidable.
    @Test(arguments: CoreSpec.all.filter { $0.normalization == .sum && $0.hasDecay })
    func oneTokenOfAWeightedMean(spec: CoreSpec) throws {
        var core = CoreProblem.random(spec: spec, length: 1, keyDim: 3, valueDim: 2, seed: 5)
        if spec.score == .reluLinear { core.q = core.q.map(abs); core.k = core.k.map(abs) }
        let g = GradientProblem.random(core: core, seed: 5)
        let (c, _) = try Reference.certifiedGradients(g)
        #expect(c.named.allSatisfy { $0.values.isComplete }, "\(spec.name)")
        #expect(c.dv.o == g.dO)
        #expect(c.dq.o.allSatisfy { $0 == 0 } && c.dk.o.allSatisfy { $0 == 0 })
        #expect(c.dL?.o == [0] && c.da?.o == [0])
    }

    /// A relu-linear query with no positive entry has a zero normaliser: the
    /// gradients depending on its row are reported by index as
    /// `zeroDenominator`, never guessed, and not raised; `dq` is exactly 0
    /// (row 0 by `δ_0 = G_00`, row 1 by `ReLU′ = 0`).
    @Test func zeroDenominatorRowsAreReported() throws {
        let spec = CoreSpec(score: .reluLinear, hasDecay: false, normalization: .sum)
        let core = CoreProblem(spec: spec, batch: 1, heads: 1, length: 2, keyDim: 1, valueDim: 2,
                               q: [1, -1], k: [1, 1], v: [1, 2, 3, 4], decay: nil, scaleSpec: nil)
        let (c, zero) = try Reference.certifiedGradients(GradientProblem(core: core, dO: [1, -1, 0.5, 2]))
        #expect(zero == [1])
        #expect(c.dq.isComplete && c.dq.o == [0, 0])
        #expect(c.dk.undecided == [0, 1].map { .init(index: $0, reason: .zeroDenominator) })
        #expect(c.dv.undecided == [0, 1, 2, 3].map { .init(index: $0, reason: .zeroDenominator) })
        #expect(c.dk.o.allSatisfy(\.isNaN) && c.dv.o.allSatisfy(\.isNaN))
        #expect(c.dq.rowsRaised == 0)
        #expect(c.summary.contains("undecided: dk 2, dv 4"))
    }

    /// A planted bug in an interval operation — the weighted sums' radius
    /// dropped (`EnclosureFault.radiusDropped`) — makes enclosures miss the
    /// independent gradients; the correct enclosures of the same problem at the
    /// same 64 bits all meet them. (The forward's planted bug, the weight's upper
    /// end rounded down, moves the gradients by less than the widths of the
    /// other enclosures at 64 bits, so it is not a test of this comparison's power.)
    @Test(arguments: [CoreSpec(score: .squared, hasDecay: true, normalization: .sum),
                      CoreSpec(score: .exponential, hasDecay: true, normalization: .sum),
                      CoreSpec(score: .linear, hasDecay: true, normalization: .none)])
    func plantedIntervalBugIsCaught(spec: CoreSpec) throws {
        let g = GradientOracleTests.problem(spec, seed: 8300, withState: false, largest: true)
        let fd = try Reference.finiteDifferenceGradients(g, precision: 512, stepExponent: -100)
        let tol = BigFloat(0x1p-190 * fd.largestMagnitude, precision: 1024)
        func missed(_ fault: EnclosureFault) throws -> Int {
            let (c, _) = try Reference.certifiedGradients(g, precision: 64, maxPrecision: 64, decimalDigits: nil, fault: fault)
            var k = 0
            for ((_, cert), (_, ref)) in zip(c.named, fd.named) {
                for e in 0..<ref.count {
                    let lo = BigFloat(ref[e], precision: 1024) - tol, hi = BigFloat(ref[e], precision: 1024) + tol
                    if cert.upper[e] < lo || hi < cert.lower[e] { k += 1 }
                }
            }
            return k
        }
        #expect(try missed(.none) == 0)
        #expect(try missed(.radiusDropped) > 0, "\(spec.name): the planted bug went unnoticed")
    }
}
