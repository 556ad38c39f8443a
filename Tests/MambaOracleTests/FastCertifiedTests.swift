import Testing
@testable import MambaOracle
import MambaPrecision
import MambaVariants

/// The certified oracle's fast double-double pass (Proofs/T7, step 6): it
/// must give bit-for-bit the results of the MPFR passes, decline what it
/// cannot enclose, and a planted fault in its bounds must be caught.
@Suite struct FastCertifiedTests {
    static let fastSpecs = CoreSpec.all.filter { $0.score != .exponential }

    /// Random problems and hazards: strong decays, a −1e9 reset, zero
    /// denominators (ReLU zeroes a query), initial states, a huge value range.
    static func cases(_ spec: CoreSpec, seed: UInt64) -> [(String, CoreProblem)] {
        var out: [(String, CoreProblem)] = []
        let base = CoreProblem.random(spec: spec, length: 24, keyDim: 5, valueDim: 3, seed: seed)
        out.append(("random", base))
        var irr = base; irr.scaleSpec = .inverseSquareRoot(keyDim: 5)
        out.append(("irrational scale", irr))
        if spec.hasDecay {
            var strong = base; strong.decay = .perStep((0..<24).map { _ in -5.0 })  // e^{−L} up to e^{120}
            out.append(("strong decay", strong))
            var stronger = base; stronger.decay = .perStep((0..<24).map { _ in -60.0 })  // beyond the fast range
            out.append(("stronger decay", stronger))
            var reset = base
            if case .perStep(var a)? = reset.decay { a[9] = -1e9; reset.decay = .perStep(a) }
            out.append(("reset -1e9", reset))
        }
        var zero = base  // query rows 3 and 7 zero: every weight 0 (zero denominator under sum)
        for d in 0..<5 { zero.q[3 * 5 + d] = 0; zero.q[7 * 5 + d] = 0 }
        out.append(("zero rows", zero))
        var wide = base  // values over many binades (still Float32)
        wide.v = wide.v.enumerated().map { i, x in Double(Float(x * [1e-30, 1, 1e30][i % 3])) }
        out.append(("wide values", wide))
        let st = CoreProblem.random(spec: spec, length: 12, keyDim: 3, valueDim: 2, withInitialState: true, seed: seed)
        out.append(("initial state", st))
        return out
    }

    static func sameBits(_ a: [Double], _ b: [Double]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
    }

    @Test(arguments: CoreSpec.all)
    func fastPathAgreesWithTheMPFRPathBitForBit(spec: CoreSpec) throws {
        for seed in [UInt64(3), 4] {
            for (name, p) in Self.cases(spec, seed: seed) {
                let fast = try Reference.certified(p, precision: 128, maxPrecision: 4096, decimalDigits: nil, fault: .none)
                let slow = try Reference.certified(p, precision: 128, maxPrecision: 4096, decimalDigits: nil, fault: .none,
                                                   fastPath: false)
                #expect(Self.sameBits(fast.o, slow.o), "\(spec.name) \(name) seed \(seed)")
                #expect(fast.undecided == slow.undecided, "\(spec.name) \(name) seed \(seed)")
            }
        }
    }

    /// Against the independent 2048-bit evaluation: every fast enclosure holds the exact value.
    @Test(arguments: Self.fastSpecs)
    func fastEnclosuresHoldTheExactValues(spec: CoreSpec) throws {
        for (name, p) in Self.cases(spec, seed: 5) where name != "reset -1e9" {
            let c = try Reference.certified(p)
            let ind = CertifiedOracleTests.independent(p)
            for e in 0..<ind.count where !ind[e].isNaN {
                #expect(CertifiedOracleTests.inside(ind[e], c.lower[e], c.upper[e]), "\(spec.name) \(name) element \(e)")
                #expect(c.o[e] == ind[e].doubleValue, "\(spec.name) \(name) element \(e)")
            }
        }
    }

    /// The fast pass takes the ordinary rows (so the comparison above tests it) and declines the hazards it cannot enclose.
    @Test(arguments: Self.fastSpecs)
    func fastPathEngagesAndDeclines(spec: CoreSpec) throws {
        let cases = Dictionary(uniqueKeysWithValues: Self.cases(spec, seed: 3))
        func rows(_ p: CoreProblem) -> [Bool]? {
            Reference.fastEnclosedRows(EnclosedSequence(problem: p, sequence: 0, precision: 128))?.ok
        }
        let ok = try #require(rows(cases["random"]!))
        if spec.score == .reluLinear {
            #expect(ok.contains(true))  // ReLU may zero whole query rows
        } else {
            #expect(ok.allSatisfy { $0 }, "\(spec.name)")
        }
        let zero = try #require(rows(cases["zero rows"]!))
        #expect(zero[3] == (spec.normalization == .none) && zero[7] == (spec.normalization == .none))
        #expect(rows(cases["initial state"]!) == nil)
        if spec.hasDecay {
            #expect(rows(cases["strong decay"]!) != nil)
            #expect(rows(cases["stronger decay"]!) == nil)
            #expect(rows(cases["reset -1e9"]!) == nil)
        }
    }

    /// With the fast pass's error bounds dropped, its enclosures miss the exact
    /// values and the independent check catches it; with them, nothing is missed.
    /// (An exact scale and no decay make every pair exact: nothing to drop.)
    @Test(arguments: [CoreSpec(score: .squared, hasDecay: true, normalization: .sum),
                      CoreSpec(score: .linear, hasDecay: true, normalization: .none),
                      CoreSpec(score: .reluLinear, hasDecay: false, normalization: .sum)])
    func plantedFastBoundBugIsCaught(spec: CoreSpec) throws {
        var p = CoreProblem.random(spec: spec, length: 16, keyDim: 4, valueDim: 4, seed: 31)
        p.scaleSpec = OracleScale(decimal: "0.3")!  // inexact: without decay the pairs would otherwise be exact
        let ind = CertifiedOracleTests.independent(p)
        func outside(_ c: CertifiedOutput) -> Int {
            (0..<ind.count).filter { !ind[$0].isNaN && !CertifiedOracleTests.inside(ind[$0], c.lower[$0], c.upper[$0]) }.count
        }
        let good = try Reference.certified(p, precision: 128, maxPrecision: 4096, decimalDigits: nil, fault: .none)
        let bad = try Reference.certified(p, precision: 128, maxPrecision: 4096, decimalDigits: nil, fault: .fastBoundDropped)
        #expect(outside(good) == 0)
        #expect(outside(bad) > 0, "\(spec.name): the planted bug went unnoticed")
    }

    /// `quadraticMagnitudes` (certified `o`, numerators skipped) gives the p-bit
    /// oracle's magnitude arrays and normalisers bit for bit.
    @Test(arguments: CoreSpec.all)
    func magnitudesFromCertifiedOutputsAreUnchanged(spec: CoreSpec) throws {
        for (name, p) in Self.cases(spec, seed: 6) {
            let q = try Reference.quadratic(p, finalState: true)
            let c = try Reference.certified(p)
            let m = try Reference.quadraticMagnitudes(p, outputs: c, finalState: true)
            let what = "\(spec.name) \(name)"
            #expect(Self.sameBits(m.magnitude, q.magnitude), "\(what)")
            #expect(Self.sameBits(m.accumulationMagnitude, q.accumulationMagnitude), "\(what)")
            #expect(Self.sameBits(m.decayMagnitude, q.decayMagnitude), "\(what)")
            #expect(m.denominators?.map(\.doubleValue) == q.denominators?.map(\.doubleValue)
                    || Self.sameBits(m.denominators?.map(\.doubleValue) ?? [], q.denominators?.map(\.doubleValue) ?? []), "\(what)")
            #expect(Self.sameBits(m.finalStateS?.map(\.doubleValue) ?? [], q.finalStateS?.map(\.doubleValue) ?? []), "\(what)")
            #expect(Self.sameBits(m.o.map(\.doubleValue), c.judgedValues.map(\.doubleValue)), "\(what)")
        }
    }

    // MARK: double-double magnitude weights (Proofs/T7, step 7)

    /// `quadraticMagnitudes` against `quadratic` at `precision`: magnitude arrays and
    /// normalisers (as Float64) bit for bit.
    static func magnitudesMatch(_ p: CoreProblem, precision: Int, fault: EnclosureFault = .none) throws -> Bool {
        let q = try Reference.quadratic(p, precision: precision)
        let c = try Reference.certified(p, precision: precision, maxPrecision: 4096, decimalDigits: nil, fault: .none)
        let m = try Reference.quadraticMagnitudes(p, precision: precision, outputs: c, finalState: false, fault: fault)
        return sameBits(m.magnitude, q.magnitude) && sameBits(m.accumulationMagnitude, q.accumulationMagnitude)
            && sameBits(m.decayMagnitude, q.decayMagnitude)
            && sameBits(m.denominators?.map(\.doubleValue) ?? [], q.denominators?.map(\.doubleValue) ?? [])
    }

    /// The double-double weights give the MPFR weights' Float64 values and normalisers bit
    /// for bit also where the p-bit evaluation's own error dominates (p = 64, 80: the bound's
    /// `θ`, `κ` terms decide), on longer random rows and on the hazards of `cases`.
    @Test(arguments: Self.fastSpecs)
    func fastMagnitudesAgreeWithTheMPFRWeightsBitForBit(spec: CoreSpec) throws {
        for precision in [64, 80, 128] {
            var long = CoreProblem.random(spec: spec, length: 96, keyDim: 8, valueDim: 3, seed: 17)
            long.scaleSpec = .inverseSquareRoot(keyDim: 7)
            #expect(try Self.magnitudesMatch(long, precision: precision), "\(spec.name) long p = \(precision)")
            for (name, p) in Self.cases(spec, seed: 9) {
                #expect(try Self.magnitudesMatch(p, precision: precision), "\(spec.name) \(name) p = \(precision)")
            }
        }
    }

    /// The double-double weights engage on ordinary rows (so the comparison above tests
    /// them) and decline what they cannot reproduce: initial states, the pairwise decay.
    @Test(arguments: Self.fastSpecs)
    func fastMagnitudeWeightsEngageAndDecline(spec: CoreSpec) throws {
        let cases = Dictionary(uniqueKeysWithValues: Self.cases(spec, seed: 3))
        func weights(_ p: CoreProblem, precision: Int = 128) -> FastMagnitudeWeights? {
            let c = ReferenceSequence(problem: p, sequence: 0, precision: precision)
            let (eL, eNegL) = Reference.decayFactors(c)
            return FastMagnitudeWeights(c, eL: eL, eNegL: eNegL)
        }
        for precision in [64, 128] {
            let p = cases["random"]!
            let fw = try #require(weights(p, precision: precision), "\(spec.name)")
            let t = MPFRBuffer(count: 3, precision: precision + 64)
            var w = [Double](repeating: 0, count: p.length)
            let decided = (0..<p.length).filter { i in w.withUnsafeMutableBufferPointer { fw.row(i, into: $0.baseAddress!, t: t) } != nil }
            // At p = 64 the MPFR weights' own error (θ ≈ 2^−61) leaves ≈ 2^−7 of the weights undecided.
            #expect(decided.count >= (precision == 128 ? p.length - 2 : p.length / 2),
                    "\(spec.name) p = \(precision): \(decided.count) of \(p.length) rows")
        }
        #expect(weights(cases["initial state"]!) == nil)
        if spec.hasDecay { #expect(weights(cases["reset -1e9"]!) == nil) }
    }

    /// The rows' weights and normalisers the double-double path decides, against the
    /// MPFR ones at 64 bits: (elements compared, elements that differ).
    static func weightMismatches(_ p: CoreProblem, fault: EnclosureFault) throws -> (Int, Int) {
        let c = ReferenceSequence(problem: p, sequence: 0, precision: 64)
        let (eL, eNegL) = Reference.decayFactors(c)
        let fw = try #require(FastMagnitudeWeights(c, eL: eL, eNegL: eNegL, fault: fault))
        let t = MPFRBuffer(count: 3, precision: 128)
        var w = [Double](repeating: 0, count: p.length)
        var compared = 0, differ = 0
        for i in 0..<p.length {
            guard let d = w.withUnsafeMutableBufferPointer({ fw.row(i, into: $0.baseAddress!, t: t) }) else { continue }
            let (mw, md) = FastMagnitudeWeights.mpfrRow(c, row: i, eL: eL, eNegL: eNegL)
            for j in 0...i { compared += 1; if Swift.abs(w[j]) != Swift.abs(mw[j]) { differ += 1 } }
            if p.spec.normalization == .sum { compared += 1; if d.bitPattern != md.bitPattern { differ += 1 } }
        }
        return (compared, differ)
    }

    /// With the p-bit evaluation's own error dropped from the bound (`θ`, `κ`), the
    /// double-double weights decide values the 64-bit MPFR weights round the other way;
    /// with it, every decided weight and normaliser is the MPFR one.
    @Test(arguments: [CoreSpec(score: .squared, hasDecay: true, normalization: .sum),
                      CoreSpec(score: .linear, hasDecay: true, normalization: .sum)])
    func plantedFastMagnitudeBugIsCaught(spec: CoreSpec) throws {
        var p = CoreProblem.random(spec: spec, length: 256, keyDim: 8, valueDim: 2, seed: 23)
        p.scaleSpec = .inverseSquareRoot(keyDim: 7)
        let good = try Self.weightMismatches(p, fault: .none)
        #expect(good.0 > 10_000 && good.1 == 0, "\(spec.name): \(good)")
        let bad = try Self.weightMismatches(p, fault: .fastMagnitudeMPFRErrorDropped)
        #expect(bad.1 > 0, "\(spec.name): the planted bug went unnoticed \(bad)")
    }

    /// The carry-free exact dot product equals the `Int128` sum of products, including
    /// the extremes (|mantissa| = 2^56 − 1 of both signs, 64 terms) and odd lengths.
    @Test func exactDotPartsMatchInt128() throws {
        var g = SeededGenerator(seed: 99)
        for trial in 0..<400 {
            let n = trial % 2 == 0 ? 64 : 1 + trial % 63
            func mant() -> Int64 {
                switch trial % 4 {
                case 0: return (g.next() % 2 == 0 ? 1 : -1) * Int64((1 << 56) - 1)
                case 1: return Int64(g.next() % (1 << 56))
                default: return Int64(bitPattern: g.next()) >> 8
                }
            }
            var a = try #require(IntegerRow((0..<n).map { _ in 1.0 }[...]))
            var b = a
            a.mantissas = (0..<n).map { _ in mant() }
            b.mantissas = (0..<n).map { _ in mant() }
            var want: Int128 = 0
            for d in 0..<n { want += Int128(a.mantissas[d]) * Int128(b.mantissas[d]) }
            let (hi, lo) = IntegerRow.dotParts(a, b)
            #expect(Int128(hi) << 64 | Int128(lo) == want, "trial \(trial)")
            #expect(IntegerRow.dot(a, b).0 == want)
        }
    }
}
