import Foundation
import MambaPrecision
@testable import MambaVerification
import Testing

@Suite("Verdict")
struct VerdictTests {
    let u16 = NumberFormat.binary16.unitRoundoff      // 2⁻¹¹

    /// 64 well-conditioned values in [0.5, 2) (magnitude = |y|), their
    /// correctly rounded binary16 values as the baseline.
    func wellConditioned() -> (y: [Double], m: [Double], b: [Double]) {
        let y: [Double] = (0..<64).map { (e: Int) -> Double in
            let step = Double((e * 37) % 64) / 64
            return 0.5 + 1.5 * step + 1e-5
        }
        let b: [Double] = y.map { NumberFormat.binary16.round($0) }
        return (y, y.map { Swift.abs($0) }, b)
    }

    @Test func passesAPerturbationWithinTheAllowance() throws {
        let (y, m, b) = wellConditioned()
        // Against a correctly rounded baseline, a candidate that is itself correctly rounded
        // except for one neighbour-ulp choice per row passes (its own output rounding).
        var candidate = b
        for r in 0..<8 { candidate[r * 8] = b[r * 8] + NumberFormat.binary16.ulp(at: b[r * 8]) / 2 }
        candidate = candidate.map { NumberFormat.binary16.round($0) }
        let verdict = try VerdictPolicy.standard.judge(candidate: candidate, oracle: y, magnitude: m,
                                                       baselines: [b], shape: [8, 8], format: .binary16)
        #expect(verdict.passed, "\(verdict.reason)")
        #expect(verdict.failingCount == 0 && verdict.judgedCount == 64 && verdict.normwise.passed)
        // A correctly rounded baseline has nothing beyond the rounding floor but the small-tensor stage floor.
        #expect(verdict.baselineBackwardError <= u16)
        #expect(verdict.reason.hasPrefix("pass: 64 of 64 elements within allowance"))
        #expect(verdict.worst!.ratio <= 1 && verdict.worst!.failure == nil)
    }

    /// Exact baselines (Proofs/T9): where every baseline is the exact value (a one-token softmax
    /// output is v itself), the tensor is judged by the a-priori bound, not by `factor·0` + 1 ulp:
    /// a kernel 2 ulps off passes, a 1e-3 error still fails, and the row and norm tests are not
    /// applicable. Correctly rounded but inexact baselines keep the tight rule (2 ulps fail).
    @Test func exactBaselinesFallBackToTheAPrioriBound() throws {
        let f = NumberFormat.binary32
        let y: [Double] = (0..<64).map { f.round(0.5 + 1.5 * Double(($0 * 37) % 64) / 64) }
        let m = y.map { 10 * Swift.abs($0) }
        let twoUlps = y.map { $0 + 2 * f.ulp(at: $0) }
        let exact = try VerdictPolicy.standard.judge(candidate: twoUlps, oracle: y, magnitude: m,
                                                     baselines: [y, y], shape: [8, 8], format: f)
        #expect(exact.passed, "\(exact.reason)")
        #expect(!exact.normwise.applicable && !exact.rows.applicable)
        let gross = try VerdictPolicy.standard.judge(candidate: y.map { f.round($0 * (1 + 1e-3)) }, oracle: y,
                                                     magnitude: m, baselines: [y, y], shape: [8, 8], format: f)
        #expect(!gross.passed)
        // Inexact values, correctly rounded baselines: the tight rule, 1 ulp allowed.
        let z = y.map { $0 / 3 }
        let rounded = z.map { f.round($0) }
        let tight = try VerdictPolicy.standard.judge(candidate: rounded.map { $0 + 2 * f.ulp(at: $0) }, oracle: z,
                                                     magnitude: m, baselines: [rounded], shape: [8, 8], format: f)
        #expect(!tight.passed && tight.normwise.applicable, "\(tight.reason)")
    }

    @Test func failsAnOrderOneRelativePerturbation() throws {
        let (y, m, b) = wellConditioned()
        let candidate = y.map { NumberFormat.binary16.round($0 * 1.05) }
        let verdict = try VerdictPolicy.standard.judge(candidate: candidate, oracle: y, magnitude: m,
                                                       baselines: [b], shape: [8, 8], format: .binary16)
        #expect(!verdict.passed)
        #expect(verdict.failingCount == 64 && !verdict.normwise.passed)
        #expect(verdict.worst?.failure == .exceedsAllowance)
        #expect(verdict.reason.hasPrefix("FAIL: 64 of 64 elements exceed their allowance; worst at ["))
        // A single bad element fails the tensor too.
        var one = b
        one[17] = NumberFormat.binary16.round(y[17] * 1.05)
        let single = try VerdictPolicy.standard.judge(candidate: one, oracle: y, magnitude: m,
                                                      baselines: [b], shape: [64], format: .binary16)
        #expect(!single.passed && single.failingCount == 1 && single.worst?.index == [17])
    }

    /// A baseline far outside the others' spread (here 1000x their error, as a
    /// backward form broken by a decay reset was measured) is not used: a
    /// candidate 8x less accurate than the sound baselines still fails, and one
    /// as accurate as they are passes. Not below the ratio: a baseline 8x
    /// worse is kept (the candidate at 8x then passes).
    @Test func ignoresABaselineFarOutsideTheOthersSpread() throws {
        let n = 4096
        let y: [Double] = (0..<n).map { 1 + Double(($0 * 7919) % 1000) / 1000 }
        let m = y
        // Deterministic ±1 pattern standing in for rounding errors of one Float32 stage.
        func noise(_ seed: Int, _ size: Double) -> [Double] {
            (0..<n).map { y[$0] * (1 + size * (((($0 * 2654435761 + seed) >> 7) & 1) == 0 ? 1 : -1)) }
        }
        let u = NumberFormat.binary32.unitRoundoff
        let good = [noise(1, 4 * u), noise(2, 4 * u)]
        let wild = noise(3, 4000 * u)
        let bad = noise(4, 32 * u)
        let policy = VerdictPolicy.standard
        let withWild = try policy.judge(candidate: bad, oracle: y, magnitude: m, baselines: good + [wild],
                                        shape: [64, 64], format: .binary32)
        #expect(!withWild.passed, "8x the sound baselines' error must fail despite a wild baseline")
        #expect(withWild.baselineCount == 2)
        let fine = try policy.judge(candidate: noise(5, 4 * u), oracle: y, magnitude: m, baselines: good + [wild],
                                    shape: [64, 64], format: .binary32)
        #expect(fine.passed, "\(fine.reason)")
        let spread = try policy.judge(candidate: bad, oracle: y, magnitude: m, baselines: good + [noise(6, 32 * u)],
                                      shape: [64, 64], format: .binary32)
        #expect(spread.baselineCount == 3 && spread.passed, "\(spread.reason)")
    }

    @Test func failsNaNAndInfinity() throws {
        let (y, m, b) = wellConditioned()
        for bad in [Double.nan, .infinity, -.infinity] {
            var candidate = b
            candidate[5] = bad
            let verdict = try VerdictPolicy.standard.judge(candidate: candidate, oracle: y, magnitude: m,
                                                           baselines: [b], shape: [64], format: .binary16)
            #expect(!verdict.passed && verdict.failingCount == 1 && verdict.nonFiniteCount == 1)
            #expect(verdict.worst?.failure == .nonFinite && verdict.worst?.offset == 5)
            #expect(verdict.normwise.candidateError == .infinity && !verdict.normwise.passed)
            #expect(verdict.reason.contains("(1 NaN/Inf)"))
        }
    }

    @Test func illConditionedElementsAreJudgedByMagnitude() throws {
        // Same |y| = 0.01 and the same error 0.002 (20%): at magnitude 10 (condition 1000)
        // that is a backward error of 2e−4 < 8·u₁₆ and passes; at magnitude 0.01 it fails.
        let y = [0.01, 0.01]
        let candidate = [0.012, 0.012].map { NumberFormat.binary16.round($0) }
        let verdict = try VerdictPolicy.standard.judge(candidate: candidate, oracle: y, magnitude: [10, 0.01],
                                                       baselines: [], shape: [2], format: .binary16)
        #expect(!verdict.passed && verdict.failingCount == 1 && verdict.worst?.index == [1])
        let element0 = try VerdictPolicy.standard.judge(candidate: [candidate[0]], oracle: [y[0]], magnitude: [10],
                                                        baselines: [], shape: [1], format: .binary16)
        #expect(element0.passed, "\(element0.reason)")
        // Without baselines: one ulp plus the a-priori 8 stages.
        #expect(element0.worst!.allowance == NumberFormat.binary16.ulp(at: 0.01) + 8 * u16 * 10)
    }

    @Test func baselineFactorFollowsFlashAttention3() throws {
        // Only the baseline term: factor 2, no slack. Baseline error 1e−3·m at element 0 and exact
        // elsewhere: β = 1e−3, so every element may be off by 2e−3·m — also where the baseline was exact.
        let policy = VerdictPolicy(factor: 2, ulpAllowance: 0, boundFactor: 0)
        let y = [Double](repeating: 1, count: 4), m = [1.0, 1, 2, 1]
        let baseline = [1 + 1e-3, 1, 1, 1]
        func judge(_ errors: [Double]) throws -> Verdict {
            try policy.judge(candidate: zip(y, errors).map(+), oracle: y, magnitude: m,
                             baselines: [baseline], shape: [4], format: .binary64)
        }
        let within = try judge([0, 1.9e-3, 3.9e-3, 0])
        #expect(within.failingCount == 0)
        #expect(Swift.abs(within.baselineBackwardError - 1e-3) < 1e-15)
        #expect(try judge([0, 2.1e-3, 0, 0]).failingCount == 1)
        #expect(try judge([0, 0, 4.1e-3, 0]).worst?.index == [2])
        // With several baselines the largest error counts.
        let two = try policy.judge(candidate: [1, 1 + 3e-3, 1, 1], oracle: y, magnitude: m,
                                   baselines: [baseline, [1, 1, 1, 1 + 2e-3]], shape: [4], format: .binary64)
        #expect(two.failingCount == 0 && Swift.abs(two.baselineBackwardError - 2e-3) < 1e-15)
    }

    @Test func normwiseCatchesUniformlyWorseCandidates() throws {
        // β = 1e−2 from one baseline element: every candidate error of 1.5e−2·m passes elementwise,
        // but ‖ŷ − y‖ = 0.15 > 2·‖b − y‖ = 0.02.
        let policy = VerdictPolicy(factor: 2, ulpAllowance: 0, boundFactor: 0)
        let y = [Double](repeating: 1, count: 100)
        var baseline = y
        baseline[0] = 1.01
        // Ten rows, each with some baseline error: a tensor with fewer than four such rows would be
        // judged with doubled factors (few draws). The 1e−9 errors move ‖b − y‖ by 5e−16.
        for r in 1..<10 { baseline[10 * r] = 1 + 1e-9 }
        let verdict = try policy.judge(candidate: y.map { $0 + 1.5e-2 }, oracle: y, magnitude: y,
                                       baselines: [baseline], shape: [10, 10], format: .binary64)
        #expect(verdict.failingCount == 0 && !verdict.passed && !verdict.normwise.passed)
        #expect(Swift.abs(verdict.normwise.candidateError - 0.15) < 1e-12)
        #expect(Swift.abs(verdict.normwise.allowance - 0.02) < 1e-12)
        #expect(verdict.reason.contains("norm: ‖err‖₂ 0.15 vs allowed 0.02"))
    }

    @Test func rowsNoBaselineErrsOnAreNoDraws() throws {
        // Four rows of 32, the first two exact in every baseline (a causal core's first token is
        // v_0 itself): two draws, so the factors double (Proofs/T9, "Few draws"). With a third
        // row erring in the baseline they stay.
        let policy = VerdictPolicy.standard
        let y = (0..<128).map { 1 + Double($0) / 128 }
        var baseline = y
        for e in 64..<128 { baseline[e] *= 1 + 1e-7 }
        let candidate = y.map { $0 * (1 + 1e-7) }
        let two = try policy.judge(candidate: candidate, oracle: y, magnitude: y, baselines: [baseline],
                                   shape: [4, 32], format: .binary64)
        #expect(two.policy.factor == 2 * policy.factor && two.policy.normFactor == 2 * policy.normFactor)
        var three = baseline
        three[32] *= 1 + 1e-7
        let threeDraws = try policy.judge(candidate: candidate, oracle: y, magnitude: y, baselines: [three],
                                          shape: [4, 32], format: .binary64)
        #expect(threeDraws.policy.factor == 2 * policy.factor)
        for e in 0..<32 { three[e] *= 1 + 1e-7 }
        let four = try policy.judge(candidate: candidate, oracle: y, magnitude: y, baselines: [three],
                                    shape: [4, 32], format: .binary64)
        #expect(four.policy.factor == policy.factor && four.policy.normFactor == policy.normFactor)
    }

    @Test func undefinedAndOverflowingOracles() throws {
        let policy = VerdictPolicy.standard
        // NaN oracle: not judged, and never a pass (docs/MATH.md §8).
        let undefined = try policy.judge(candidate: [123, 1], oracle: [.nan, 1], magnitude: [.nan, 1],
                                         baselines: [], shape: [2], format: .binary16)
        #expect(!undefined.passed && undefined.isUndefined && undefined.judgedCount == 1)
        #expect(undefined.passedWhereDefined && undefined.undefinedIndices == [[0]])
        // Oracle 1e5 overflows binary16: +∞ and saturation pass, a finite small value or −∞ fails.
        for (value, passes) in [(Double.infinity, true), (65504, true), (3, false), (-.infinity, false), (.nan, false)] {
            let verdict = try policy.judge(candidate: [value], oracle: [1e5], magnitude: [1e5],
                                           baselines: [], shape: [1], format: .binary16)
            #expect(verdict.passed == passes, "\(value)")
            if !passes { #expect(verdict.worst?.failure == .missedOverflow) }
        }
        // E4M3 has no infinities: NaN is the correct overflow.
        let e4m3 = try policy.judge(candidate: [.nan], oracle: [1000], magnitude: [1000],
                                    baselines: [], shape: [1], format: .e4m3)
        #expect(e4m3.passed)
    }

    @Test func bigFloatOracleAgreesWithDoubleOracle() throws {
        let (y, m, b) = wellConditioned()
        let candidate = y.map { NumberFormat.binary16.round($0 * (1 + 6 * u16)) }
        let a = try VerdictPolicy.standard.judge(candidate: candidate, oracle: y, magnitude: m,
                                                 baselines: [b], shape: [64], format: .binary16)
        let e = try VerdictPolicy.standard.judge(candidate: candidate, oracle: y.map { BigFloat($0, precision: 113) },
                                                 magnitude: m, baselines: [b], shape: [64], format: .binary16)
        #expect(a == e)
    }

    @Test func invalidInputsThrow() {
        #expect(throws: VerificationError.self) {
            try VerdictPolicy(factor: -1).judge(candidate: [1], oracle: [1], magnitude: [1], baselines: [],
                                                shape: [1], format: .binary16)
        }
        #expect(throws: VerificationError.invalidMagnitude(index: [0, 1], value: -1)) {
            try VerdictPolicy.standard.judge(candidate: [1, 1], oracle: [1, 1], magnitude: [1, -1], baselines: [],
                                             shape: [1, 2], format: .binary16)
        }
        #expect(throws: VerificationError.countMismatch(what: "baseline 1", shape: [2], expected: 2, found: 1)) {
            try VerdictPolicy.standard.judge(candidate: [1, 1], oracle: [1, 1], magnitude: [1, 1],
                                             baselines: [[1, 1], [1]], shape: [2], format: .binary16)
        }
    }

    @Test func policyDecodesPartialJSON() throws {
        let policy = try VerificationReport.jsonDecoder().decode(VerdictPolicy.self, from: Data(#"{"boundFactor": 16}"#.utf8))
        #expect(policy == VerdictPolicy(boundFactor: 16))
    }
}

@Suite("Verdict on emulated kernels")
struct EmulatedKernelVerdictTests {
    /// Correct Float16-acc32 kernels (other summation order; pure Float16) pass
    /// against the Float16-acc32 baseline on several seeds and cores; that is,
    /// the verdict does not cry wolf.
    @Test(arguments: [(CoreEmulation.Score.squared, true), (.linear, false), (.squared, false)])
    func correctKernelsPass(score: CoreEmulation.Score, normalised: Bool) throws {
        for seed in UInt64(1)...6 {
            let core = CoreEmulation(seed: seed, score: score, normalised: normalised)
            let (y, m) = core.oracle()
            let baseline = core.kernel()
            for candidate in [core.kernel(reversed: true), core.kernel()] {
                let verdict = try VerdictPolicy.standard.judge(candidate: candidate, oracle: y, magnitude: m,
                                                               baselines: [baseline], shape: core.shape, format: .binary16)
                #expect(verdict.passed, "seed \(seed): \(verdict.reason)")
            }
            let pure = core.kernel(reversed: true, pureHalf: true)
            let verdict = try VerdictPolicy.standard.judge(candidate: pure, oracle: y, magnitude: m,
                                                           baselines: [baseline, core.kernel(pureHalf: true)],
                                                           shape: core.shape, format: .binary16)
            #expect(verdict.passed, "pure half, seed \(seed): \(verdict.reason)")
        }
    }

    /// Each bug fails, on every seed, with many failing elements.
    @Test(arguments: CoreEmulation.Bug.allCases)
    func wrongKernelsFail(bug: CoreEmulation.Bug) throws {
        // The scale cancels under sum normalisation, so "scale twice" is judged on the un-normalised core.
        let normalised = bug != .scaleTwice
        for seed in UInt64(1)...6 {
            let core = CoreEmulation(seed: seed, score: .squared, normalised: normalised)
            let (y, m) = core.oracle()
            let verdict = try VerdictPolicy.standard.judge(candidate: core.kernel(bug: bug), oracle: y, magnitude: m,
                                                           baselines: [core.kernel()], shape: core.shape,
                                                           format: .binary16)
            #expect(!verdict.passed, "\(bug) seed \(seed): \(verdict.reason)")
            #expect(verdict.failingCount >= core.dv, "\(bug) seed \(seed): \(verdict.reason)")
        }
    }
}
