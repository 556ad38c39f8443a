import MambaPrecision
@testable import MambaVerification
import Testing

/// The row test's pooled yardstick (`RowPredictor`, Proofs/T9 "Row yardstick").
@Suite("Row yardstick")
struct RowYardstickTests {
    /// A deterministic ±1 per index (a stand-in for one rounding pattern).
    static func sign(_ i: Int, _ seed: Int) -> Double {
        (((i &* 2654435761 &+ seed &* 40503) >> 9) & 1) == 0 ? 1 : -1
    }

    /// The fitted mix follows whichever row norm the baselines' errors are proportional to.
    @Test func predictorFitsTheShapeOfTheBaselinesRowErrors() {
        let rows = 200
        let norms = (0..<rows).map { 1 + Double(($0 * 37) % 101) / 10 }     // 1 … 11
        let scales = (0..<rows).map { 1 + Double(($0 * 53) % 97) / 4 }      // 1 … 25, unrelated to norms
        let alongScale = RowPredictor(draws: scales.map { 1e-6 * $0 }, norms: norms, scales: scales, percent: 95)
        #expect(alongScale.mix == 1)
        let alongNorm = RowPredictor(draws: norms.map { 3e-7 * $0 }, norms: norms, scales: scales, percent: 95)
        #expect(alongNorm.mix == 0)
        // Exactly proportional errors are predicted exactly: ρ·π_r = d_r.
        for r in [0, 17, 199] {
            let p = alongScale.rho * alongScale.predict(norm: norms[r], scale: scales[r])
            #expect(Swift.abs(p - 1e-6 * scales[r]) <= 1e-12 * scales[r])
        }
        // Nothing to fit (every baseline exact): ρ = 0.
        let exact = RowPredictor(draws: [Double](repeating: 0, count: rows), norms: norms, scales: scales, percent: 95)
        #expect(exact.rho == 0)
    }

    /// 256 rows of 64 values; the baselines and a correct candidate carry a relative
    /// error `δ` on every element, the baselines `2.5δ` on row 100 (one unlucky
    /// draw). A candidate `5.5δ` off on row 100 is more than 3.5 times what rows
    /// like it show and fails the row test alone — a yardstick made of that row's
    /// own baseline error (4 × 2.5δ) passed it. A correct candidate as unlucky on
    /// that row as the baselines (2.5δ) passes.
    @Test func aRowHiddenByAnUnluckyBaselineDrawFails() throws {
        let rows = 256, width = 64, n = rows * width
        let y: [Double] = (0..<n).map { 1 + Double(($0 * 7919) % 1000) / 1000 }
        let delta = 16 * NumberFormat.binary32.unitRoundoff
        func kernel(_ seed: Int, row100 size: Double) -> [Double] {
            (0..<n).map { e in y[e] * (1 + (e / width == 100 ? size : delta) * Self.sign(e, seed)) }
        }
        let baselines = [kernel(1, row100: 2.5 * delta), kernel(2, row100: 2.5 * delta)]
        func judge(_ c: [Double]) throws -> Verdict {
            try VerdictPolicy.standard.judge(candidate: c, oracle: y, magnitude: y, baselines: baselines,
                                             shape: [rows, width], format: .binary64)
        }
        let correct = try judge(kernel(3, row100: delta))
        #expect(correct.passed, "\(correct.reason)")
        let unlucky = try judge(kernel(4, row100: 2.5 * delta))
        #expect(unlucky.passed, "\(unlucky.reason)")
        let bug = try judge(kernel(5, row100: 5.5 * delta))
        #expect(!bug.passed)
        #expect(!bug.rows.passed && bug.rows.failingRows == 1 && bug.rows.worstRow == [100, 0])
        #expect(bug.failingCount == 0 && bug.normwise.passed, "the row test decides alone: \(bug.reason)")
    }

    /// Rows whose errors follow their error scale (cancellation: ‖s‖_r up to 20×
    /// ‖y‖_r, errors in proportion) pass when the candidate is as accurate as the
    /// baselines there; a row 5× its predicted error fails.
    @Test func rowsThatCancelAreJudgedByTheirScale() throws {
        let rows = 256, width = 64, n = rows * width
        let y: [Double] = (0..<n).map { 1 + Double(($0 * 7919) % 1000) / 1000 }
        let cancel: (Int) -> Double = { 1 + Double(($0 * 29) % 20) }   // ‖s‖_r/‖y‖_r from 1 to 20
        let s = (0..<n).map { y[$0] * cancel($0 / width) }
        let delta = 16 * NumberFormat.binary32.unitRoundoff
        func kernel(_ seed: Int, bugRow: Int? = nil) -> [Double] {
            (0..<n).map { e in
                let r = e / width
                return y[e] + s[e] * delta * (r == bugRow ? 5 : 1) * Self.sign(e, seed)
            }
        }
        let baselines = [kernel(1), kernel(2)]
        func judge(_ c: [Double]) throws -> Verdict {
            try VerdictPolicy.standard.judge(candidate: c, oracle: y, magnitude: s, baselines: baselines,
                                             shape: [rows, width], format: .binary64)
        }
        let correct = try judge(kernel(3))
        #expect(correct.passed && correct.rows.worstShare < 0.5, "\(correct.reason)")
        let bug = try judge(kernel(4, bugRow: 77))
        #expect(!bug.rows.passed && bug.rows.worstRow == [77, 0], "\(bug.reason)")
    }

    /// The pooled yardstick at the candidate's own level (Proofs/T9, "The candidate's own
    /// level"). Baselines err `δ` per element, a candidate four times as accurate `δ/4`,
    /// with one row `2δ` off: 8 times the candidate's own row error but only twice the
    /// baselines' — inside `3.5·ρ·π_r` at the baselines' level, outside it at the
    /// candidate's (`λ` at its floor ½, the yardstick then 3.5 × ½δ = 1.75δ). The same
    /// candidate without the wrong row passes, and a candidate as accurate as the
    /// baselines keeps their yardstick (`λ = 1`): the same row, twice its own error, passes.
    @Test func aRowEightTimesTheCandidatesOwnErrorFailsWhenTheBaselinesAreWorse() throws {
        let rows = 256, width = 64, n = rows * width
        let y: [Double] = (0..<n).map { 1 + Double(($0 * 7919) % 1000) / 1000 }
        let delta = 16 * NumberFormat.binary32.unitRoundoff
        func kernel(_ seed: Int, size: Double, row100: Double) -> [Double] {
            (0..<n).map { e in y[e] * (1 + (e / width == 100 ? row100 : size) * Self.sign(e, seed)) }
        }
        let baselines = [kernel(1, size: delta, row100: delta), kernel(2, size: delta, row100: delta)]
        func judge(_ c: [Double]) throws -> Verdict {
            try VerdictPolicy.standard.judge(candidate: c, oracle: y, magnitude: y, baselines: baselines,
                                             shape: [rows, width], format: .binary64)
        }
        let accurate = try judge(kernel(3, size: delta / 4, row100: delta / 4))
        #expect(accurate.passed, "\(accurate.reason)")
        let bug = try judge(kernel(4, size: delta / 4, row100: 2 * delta))
        #expect(!bug.rows.passed && bug.rows.failingRows == 1 && bug.rows.worstRow == [100, 0], "\(bug.reason)")
        #expect(bug.failingCount == 0 && bug.normwise.passed, "the row test decides alone: \(bug.reason)")
        let asAccurateAsTheBaselines = try judge(kernel(5, size: delta, row100: 2 * delta))
        #expect(asAccurateAsTheBaselines.passed, "\(asAccurateAsTheBaselines.reason)")
    }

    /// The opt-in replica test (Proofs/T9, "A replica baseline", `replicaRowFactor: 2`): the candidate is baseline 1 up to
    /// accumulation-order noise (10⁻³δ). A row `2.4δ` off, inside `3.5·R_r ≈ 3.5δ` (and each element inside `2.5β`), departs from
    /// the replica by about `2.6δ‖y‖_r > 2·R_r` and fails; with the replica test off, or for a
    /// candidate with a rounding pattern of its own (no replica), the same row passes.
    @Test func aRowDepartingFromAReplicaBaselineFails() throws {
        let rows = 256, width = 64, n = rows * width
        let y: [Double] = (0..<n).map { 1 + Double(($0 * 7919) % 1000) / 1000 }
        let delta = 16 * NumberFormat.binary32.unitRoundoff
        func kernel(_ seed: Int) -> [Double] { (0..<n).map { e in y[e] * (1 + delta * Self.sign(e, seed)) } }
        let baselines = [kernel(1), kernel(2)]
        func replica(row100 size: Double?) -> [Double] {
            (0..<n).map { e in
                if let size, e / width == 100 { return y[e] * (1 + size * Self.sign(e, 7)) }
                return baselines[0][e] * (1 + 1e-3 * delta * Self.sign(e, 9))
            }
        }
        func judge(_ c: [Double], _ policy: VerdictPolicy = VerdictPolicy(replicaRowFactor: 2)) throws -> Verdict {
            try policy.judge(candidate: c, oracle: y, magnitude: y, baselines: baselines,
                             shape: [rows, width], format: .binary64)
        }
        let correct = try judge(replica(row100: nil))
        #expect(correct.passed, "\(correct.reason)")
        #expect(correct.rows.replica?.baseline == 0 && correct.rows.replica?.factor == 2)
        let bug = try judge(replica(row100: 2.4 * delta))
        #expect(!bug.passed && bug.rows.failingRows == 1 && bug.rows.worstRow == [100, 0], "\(bug.reason)")
        #expect(bug.failingCount == 0 && bug.normwise.passed, "the row test decides alone: \(bug.reason)")
        let off = try judge(replica(row100: 2.4 * delta), .standard)   // the default: off
        #expect(off.passed && off.rows.replica == nil, "\(off.reason)")
        var own = kernel(3)
        for e in (100 * width)..<(101 * width) { own[e] = y[e] * (1 + 2.4 * delta * Self.sign(e, 7)) }
        let independent = try judge(own)
        #expect(independent.passed && independent.rows.replica == nil, "\(independent.reason)")
    }
}
