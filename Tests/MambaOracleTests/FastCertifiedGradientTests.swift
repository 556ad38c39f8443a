import Testing
@testable import MambaOracle
import MambaPrecision
import MambaVariants

/// The certified gradients' fast double-double pass (Proofs/T7, step 8): it
/// must give bit-for-bit the results of the MPFR passes, decline what it
/// cannot enclose, and a planted fault in its bounds must be caught.
@Suite struct FastCertifiedGradientTests {
    static let fastSpecs = CoreSpec.all.filter { $0.score != .exponential }

    /// The forward's hazards (`FastCertifiedTests.cases`) with a seeded upstream gradient.
    static func cases(_ spec: CoreSpec, seed: UInt64) -> [(String, GradientProblem)] {
        FastCertifiedTests.cases(spec, seed: seed).map { ($0.0, GradientProblem.random(core: $0.1, seed: seed)) }
    }

    static func sameBits(_ a: CertifiedGradients, _ b: CertifiedGradients) -> Bool {
        zip(a.named, b.named).allSatisfy { x, y in
            x.name == y.name && FastCertifiedTests.sameBits(x.values.o, y.values.o) && x.values.undecided == y.values.undecided
        } && a.named.count == b.named.count
    }

    @Test(arguments: CoreSpec.all)
    func fastGradientsAgreeWithTheMPFRPathBitForBit(spec: CoreSpec) throws {
        for seed in [UInt64(3), 4] {
            for (name, g) in Self.cases(spec, seed: seed) {
                let fast = try Reference.certifiedGradients(g, precision: 128, maxPrecision: 4096, decimalDigits: nil,
                                                            fault: .none)
                let slow = try Reference.certifiedGradients(g, precision: 128, maxPrecision: 4096, decimalDigits: nil,
                                                            fault: .none, fastPath: false)
                #expect(Self.sameBits(fast.gradients, slow.gradients), "\(spec.name) \(name) seed \(seed)")
                #expect(fast.zeroDenominatorRows == slow.zeroDenominatorRows, "\(spec.name) \(name) seed \(seed)")
            }
        }
    }

    /// The fast pass takes ordinary sequences and decides every element of
    /// them (so the comparison above tests it), and declines the hazards it cannot enclose.
    @Test(arguments: Self.fastSpecs)
    func fastGradientsEngageAndDecline(spec: CoreSpec) throws {
        let cases = Dictionary(uniqueKeysWithValues: Self.cases(spec, seed: 3))
        func fast(_ g: GradientProblem) -> Reference.GradientEnclosures? {
            let p = g.core, n = p.length, dv = p.valueDim
            return Reference.fastEnclosedGradients(EnclosedSequence(problem: p, sequence: 0, precision: 128),
                                                   dO: ValueRows(g.dO[0 ..< n * dv], width: dv))
        }
        let g = cases["random"]!, n = g.core.length
        if spec.score != .reluLinear || spec.normalization == .none {  // ReLU may zero whole query rows
            let enc = try #require(fast(g), "\(spec.name)")
            for (x, count) in [(enc.dq, n * g.core.keyDim), (enc.dk, n * g.core.keyDim), (enc.dv, n * g.core.valueDim)] {
                for e in 0..<count {
                    #expect(RoundingDecision.float64(x.lo[e], x.hi[e]) != nil, "\(spec.name) element \(e) undecided")
                }
            }
        }
        #expect(fast(cases["initial state"]!) == nil)
        if spec.normalization == .sum { #expect(fast(cases["zero rows"]!) == nil) }
        if spec.hasDecay {
            #expect(fast(cases["strong decay"]!) != nil || spec.score == .reluLinear)
            #expect(fast(cases["stronger decay"]!) == nil)
            #expect(fast(cases["reset -1e9"]!) == nil)
        }
    }

    /// With the fast pass's sum bounds dropped, its enclosures miss the
    /// independent central differences (as `CertifiedGradientTests.check`); with them, nothing is missed.
    @Test(arguments: [CoreSpec(score: .squared, hasDecay: true, normalization: .sum),
                      CoreSpec(score: .linear, hasDecay: true, normalization: .none),
                      CoreSpec(score: .reluLinear, hasDecay: false, normalization: .sum)])
    func plantedFastGradientBoundBugIsCaught(spec: CoreSpec) throws {
        var g = GradientOracleTests.problem(spec, seed: 8400, withState: false, largest: true)
        g.core.scaleSpec = OracleScale(decimal: "0.3")!  // inexact: without decay the pairs would otherwise be exact
        let fd = try Reference.finiteDifferenceGradients(g, precision: 512, stepExponent: -100)
        let tol = BigFloat(0x1p-190 * fd.largestMagnitude, precision: 1024)
        func missed(_ fault: EnclosureFault) throws -> Int {
            let (c, _) = try Reference.certifiedGradients(g, precision: 128, maxPrecision: 4096, decimalDigits: nil,
                                                          fault: fault)
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
        #expect(try missed(.fastBoundDropped) > 0, "\(spec.name): the planted bug went unnoticed")
    }
}
