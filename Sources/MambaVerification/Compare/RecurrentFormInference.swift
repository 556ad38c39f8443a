import MambaKernels
import MambaPrecision
import MambaVariants

/// An undeclared recurrent form, read from the candidate's own error pattern
/// (per-step decays, true Float32, outputs; Proofs/T9, "An undeclared
/// recurrent form").
///
/// Without a declared form every form's baselines set the allowance. The
/// parallel forms (chunked, quadratic; sequential or parallel-scan prefix
/// sums) exponentiate differences of Float32 prefix sums, whose error grows
/// with `|ℓ|` deep in a chunk; a recurrent kernel multiplies decay factors
/// token by token and has no such error. Under strong decays the parallel
/// baselines err several times more (FLA's fused_recurrent_simple_gla, fp32,
/// N = 100: 4.9x in norm), and a recurrent kernel's bugs hide there.
///
/// With `b_r` a row's error in the recurrent baselines (the largest), `s_r` in
/// the parallel ones (the largest) and `e_r` the candidate's:
///
/// - a parallel kernel errs more, relative to `b_r`, on the rows prefix sums
///   make harder: Spearman's rank correlation `ρ` of `e_r/b_r` with `s_r/b_r`
///   is high; a recurrent kernel's is not;
/// - a recurrent kernel's rows are as accurate as the recurrent baselines':
///   the 90th percentile of `e_r/b_r` (`level`) stays below 1; a chunk kernel
///   errs more on its deep rows, even at chunk 8.
///
/// The recurrent form is inferred when `ρ ≤ maximumCorrelation` and `level ≤
/// maximumLevel`, with at least 64 rows and 16 of them where `s_r > 4·b_r`
/// (else the form does not matter on these inputs and nothing is inferred).
/// Both statistics are ranks of the candidate's own rows: a few wrong rows
/// barely move them, so a one-row, boundary or final-state bug is judged as
/// the recurrent kernel it sits in. A uniform scale error is read past
/// (`withoutUniformScale`); any other bug that raises most rows lifts `level`
/// above 1 and keeps every form's allowance: a bug never makes a kernel look
/// more accurate. Wrongly inferring
/// could fail a correct parallel kernel, so both thresholds sit below every
/// parallel kernel measured (Triton's and CUDA's matrix units need chunks of
/// at least 16 tokens; chunk 8 is emulated as a margin). Only true Float32:
/// in TF32 and 16-bit operands the operand rounding hides the prefix sums.
/// Gradients are not inferred (FLA's recurrent backward reaches `level` 1.19
/// against our recurrent backward, as high as a chunk-8 kernel's outputs).
/// A declared form, or an inferred chunk length, always wins.
public enum RecurrentFormInference {
    /// The rank correlation above which no form is inferred. Measured
    /// (Proofs/T9): recurrent kernels 0.14–0.25 (FLA's fused_recurrent fp32,
    /// a Float32 recurrence emulated on two inputs), chunk-64 kernels 0.74–0.89
    /// (the real Mamba-2 SSD, IEEE fp32: 0.79), chunk 32 0.42–0.60.
    public static let maximumCorrelation = 0.3
    /// The `level` above which no form is inferred. Measured: recurrent kernels
    /// 0.84–0.87; chunk kernels at chunk 8, 16, 64: 1.16–1.57, 1.52–2.61,
    /// 3.8–8.3.
    public static let maximumLevel = 1.0
    /// Rows needed, and rows the parallel forms find over 4x harder. At 64 rows
    /// `ρ`'s sampling noise is `1/√63 ≈ 0.13`: a parallel kernel (≥ 0.74
    /// measured) lands at or below 0.3 only 3.5 standard deviations off, and a
    /// recurrent one that lands above it merely keeps the wider allowance. 16
    /// hard rows, as `ChunkLengthInference` asks of its deep rows: fewer, and
    /// the form hardly changes the allowance.
    public static let minimumRows = 64, minimumHardRows = 16

    public struct Inference: Sendable, Equatable {
        /// Spearman's `ρ` of `e_r/b_r` with `s_r/b_r`.
        public var correlation: Double
        /// Rows measured, and those where `s_r > 4·b_r`.
        public var rows: Int, hardRows: Int
        /// The 90th percentile of `e_r/b_r`: the candidate's row errors in units of the
        /// recurrent baselines'.
        public var level: Double
        /// Whether `ρ ≤ maximumCorrelation` and `level ≤ maximumLevel`: a recurrent kernel.
        public var recurrent: Bool {
            correlation <= RecurrentFormInference.maximumCorrelation && level <= RecurrentFormInference.maximumLevel
        }
        /// What the report says (for an inferred recurrent form).
        public var note: String {
            "recurrent form inferred (not declared): 90% of rows are as accurate as a Float32 recurrence "
                + "(\(NumberText.significant(level, digits: 2))x its row error at the 90th percentile) and errors "
                + "do not grow where the parallel forms' prefix sums err more (rank correlation "
                + "\(NumberText.significant(correlation, digits: 2)) over \(rows) rows, \(hardRows) of them over "
                + "4x harder for a parallel form); judged as +form=recurrent "
                + "(declare +form=chunked or +form=quadratic otherwise)"
        }
    }

    /// Whether the rule applies: per-step decays, no declared form, true
    /// Float32 arithmetic.
    public static func applies(_ problem: CoreProblem, settings: ComparisonSettings) -> Bool {
        guard case .perStep = problem.decay, settings.effectiveArithmetic.form == nil,
              settings.effectiveMode == .float32 else { return false }
        return true
    }

    /// `ρ` and `level` from row errors (candidate, recurrent baselines,
    /// parallel baselines), or nil with too few rows.
    public static func correlation(candidate e: [Double], recurrent b: [Double], parallel s: [Double]) -> Inference? {
        var x: [Double] = [], y: [Double] = [], hard = 0
        for r in e.indices where r < b.count && r < s.count {
            guard b[r] > 0, b[r].isFinite, s[r].isFinite, e[r].isFinite else { continue }
            x.append(s[r] / b[r])
            y.append(e[r] / b[r])
            if s[r] > 4 * b[r] { hard += 1 }
        }
        guard x.count >= minimumRows, hard >= minimumHardRows, let rho = spearman(x, y) else { return nil }
        return Inference(correlation: rho, rows: x.count, hardRows: hard,
                         level: Percentile.nearestRank(of: y.sorted(), percent: 90))
    }

    /// Spearman's rank correlation (average ranks for ties), nil when either
    /// side is constant.
    static func spearman(_ x: [Double], _ y: [Double]) -> Double? {
        func ranks(_ v: [Double]) -> [Double] {
            let order = v.indices.sorted { v[$0] < v[$1] }
            var r = [Double](repeating: 0, count: v.count), i = 0
            while i < order.count {
                var j = i
                while j + 1 < order.count, v[order[j + 1]] == v[order[i]] { j += 1 }
                for t in i...j { r[order[t]] = Double(i + j) / 2 }
                i = j + 1
            }
            return r
        }
        let rx = ranks(x), ry = ranks(y), n = Double(x.count)
        let mx = rx.reduce(0, +) / n, my = ry.reduce(0, +) / n
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for i in rx.indices {
            sxy += (rx[i] - mx) * (ry[i] - my); sxx += (rx[i] - mx) * (rx[i] - mx); syy += (ry[i] - my) * (ry[i] - my)
        }
        guard sxx > 0, syy > 0 else { return nil }
        return sxy / (sxx * syy).squareRoot()
    }

    /// The prefix-sum orders of the chunked baselines that stand for a parallel
    /// kernel (as `KernelComparison.baselineOutputs` runs them).
    static let parallelScans: [PrefixScan] = [.sequential, .koggeStone, .brentKungBase2]

    /// The inference from a candidate's outputs `o` (oracle `y`), or nil where
    /// the rule does not apply or cannot measure.
    public static func infer(_ problem: CoreProblem, candidate o: [Double], oracle y: [Double],
                             settings: ComparisonSettings, runs: BaselineRuns? = nil) -> Inference? {
        guard applies(problem, settings: settings), o.count == y.count, problem.valueDim > 0,
              let mode = try? settings.effectiveArithmetic.mode() else { return nil }
        var options = settings.kernelOptions
        options.roundOutput = false
        options.stateStorage = settings.effectiveArithmetic.stateStorage
        options.chunkSize = settings.effectiveArithmetic.chunkSize
        let recurrent = KernelComparison.recurrentBaselines(problem, mode: mode, options: options, runs: runs)
        var parallel: [CoreOutput] = []
        for form in settings.baselineForms where form != .recurrent {
            for scan in form == .chunked ? parallelScans : [.sequential] {
                var t = options
                t.prefixScan = scan
                if let r = try? runs.run(problem, .base, form: form, mode: mode, options: t) { parallel.append(r) }
            }
        }
        let width = problem.valueDim
        let rows = { (x: [Double]) in rowErrorNorms(x, y, width: width) }
        let b = rowMax(recurrent.filter { $0.o.count == y.count }.map { rows($0.o) })
        let s = rowMax(parallel.filter { $0.o.count == y.count }.map { rows($0.o) })
        return correlation(candidate: rows(withoutUniformScale(o, oracle: y)), recurrent: b, parallel: s)
    }

    /// `o − α·y` with `α = ⟨o − y, y⟩/⟨y, y⟩` where that scale carries at least half of the
    /// error's energy (`α²·‖y‖² ≥ ½‖o − y‖²`), else `o`. A scale error is no form: on a
    /// recurrent kernel, `o·(1 + 8ε)` (ε its own relative error) lifts every row's `e_r/b_r`
    /// and kept the parallel forms' allowance, under which it passed (FLA's
    /// fused_recurrent_simple_gla, fp32, N = 100). A correct kernel's error, or one with a
    /// wrong row, has no such dominant scale and is read exactly as given, so its statistics
    /// are those of the measurements; the verdict always judges `o` as given. Measured share
    /// `α²‖y‖²/‖o − y‖²`: FLA's fused_recurrent fp32 N = 100, 0.0077; the SSD IEEE fp32,
    /// 0.0005; that kernel scaled by 8x its own error, 0.98 — ½ lies far from both.
    static func withoutUniformScale(_ o: [Double], oracle y: [Double]) -> [Double] {
        var dot = 0.0, yy = 0.0, ee = 0.0
        for i in o.indices where i < y.count && o[i].isFinite && y[i].isFinite {
            let e = o[i] - y[i]
            dot += e * y[i]
            yy += y[i] * y[i]
            ee += e * e
        }
        guard yy > 0, yy.isFinite, ee.isFinite, (dot / yy).isFinite else { return o }
        let alpha = dot / yy
        guard alpha * alpha * yy >= 0.5 * ee else { return o }
        return zip(o, y).map { $0 - alpha * $1 }
    }

    static func rowMax(_ rows: [[Double]]) -> [Double] {
        guard let first = rows.first else { return [] }
        return rows.dropFirst().reduce(first) { zip($0, $1).map { Swift.max($0, $1) } }
    }
}
