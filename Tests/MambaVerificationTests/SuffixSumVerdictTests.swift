import MambaPrecision
@testable import MambaVerification
import Testing

/// Suffix sums (the decay gradient `da_t = Σ_{u≥t} dL_u`) are judged by the
/// row and norm tests through their increments (Proofs/T9, "Suffix sums").
@Suite("Suffix-sum verdict")
struct SuffixSumVerdictTests {
    /// Two heads of n = 256: `y_t = Σ_{u≥t} d_u`, magnitudes `Σ_{u≥t} |d_u|`.
    static let n = 256, rows = 2
    static let d: [Double] = (0..<(rows * n)).map { Double(($0 * 7919) % 2001) / 1000 - 1 }
    static let y: [Double] = suffix(d)
    static let magnitude: [Double] = suffix(d.map { Swift.abs($0) })

    static func suffix(_ x: [Double]) -> [Double] {
        var out = x
        for r in 0..<rows {
            var acc = 0.0
            for t in stride(from: n - 1, through: 0, by: -1) { acc += x[r * n + t]; out[r * n + t] = acc }
        }
        return out
    }

    /// `y` plus the suffix sum of per-step errors `step(t)`, stored in binary32.
    static func walk(_ step: (Int) -> Double) -> [Double] {
        let e = suffix((0..<(rows * n)).map(step))
        return zip(y, e).map { Double(Float($0 + $1)) }
    }

    static func judge(_ candidate: [Double], baselines: [[Double]], suffixSums: Bool) throws -> Verdict {
        try VerdictPolicy.standard.judge(candidate: candidate, oracle: .rounded(y), magnitude: magnitude,
                                         baselines: baselines, shape: [1, rows, n], format: .binary32,
                                         rowLength: nil, keepPerRowRule: true, suffixSums: suffixSums)
    }

    static let sigma = 2e-5
    /// Baseline: per-step errors of alternating sign (its walk stays near zero).
    static let baseline = walk { ($0 % 2 == 0 ? 1 : -1) * sigma }

    /// A correct kernel's per-step errors are as large as the baseline's but all
    /// of one sign (a rounding bias): its suffix sum drifts to `n·σ`, about 18x the
    /// baseline's norm. Judged through the increments it passes; judged on the
    /// values themselves its norm fails (the false alarm this rule removes).
    @Test func aDriftingButCorrectSuffixSumPasses() throws {
        let candidate = Self.walk { _ in Self.sigma }
        let v = try Self.judge(candidate, baselines: [Self.baseline], suffixSums: true)
        #expect(v.passed, "\(v.reason)")
        #expect(v.normwise.share < 0.75)
        let plain = try Self.judge(candidate, baselines: [Self.baseline], suffixSums: false)
        #expect(!plain.normwise.passed)
    }

    /// One step off by 3x the baseline's whole increment norm (`3σ√512`: an
    /// error in one `dL_t`, carried into every earlier `da`) fails through the
    /// increments; so does the suffix sum rescaled by 1 + 1e-4.
    @Test func aWrongStepAndAUniformScaleFail() throws {
        let wrongStep = Self.walk { t in (t % 2 == 0 ? 1 : -1) * Self.sigma + (t == 300 ? 68 * Self.sigma : 0) }
        let v = try Self.judge(wrongStep, baselines: [Self.baseline], suffixSums: true)
        #expect(!v.passed)
        #expect(!v.normwise.passed || !v.rows.passed)
        let scaled = Self.y.map { Double(Float($0 * (1 + 1e-4))) }
        let s = try Self.judge(scaled, baselines: [Self.baseline], suffixSums: true)
        #expect(!s.passed)
    }

    /// Non-finite candidate values still fail, and an undefined oracle element
    /// ends the increment chain there instead of spreading NaN.
    @Test func nonFiniteAndUndefinedElements() throws {
        var candidate = Self.baseline
        candidate[10] = .nan
        #expect(try !Self.judge(candidate, baselines: [Self.baseline], suffixSums: true).passed)
        var oracle = Self.y
        oracle[20] = .nan
        let v = try VerdictPolicy.standard.judge(candidate: Self.baseline, oracle: .rounded(oracle),
                                                 magnitude: Self.magnitude, baselines: [Self.baseline],
                                                 shape: [1, Self.rows, Self.n], format: .binary32, rowLength: nil,
                                                 keepPerRowRule: true, suffixSums: true)
        #expect(v.normwise.candidateError.isFinite)
        #expect(v.undefinedCount == 1)
    }
}
