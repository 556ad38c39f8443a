import MambaPrecision
import MambaVerification

/// Small, deterministic reports for the report tests.
enum ReportFixtures {
    /// A case whose candidate is the correctly rounded oracle (passes) or 10% off (fails),
    /// optionally with a NaN.
    static func reportCase(_ name: String, tensor: String = "o", failing: Bool = false, nan: Bool = false,
                           duration: Double = 0.125) throws -> ReportCase {
        let y: [Double] = [0.75, -1.25, 2.5, 0.3125, 1e-3, -3]
        var candidate = y.map { NumberFormat.binary16.round(failing ? $0 * 1.1 : $0) }
        if nan { candidate[2] = .nan }
        let magnitude = y.map { Swift.abs($0) * 2 }
        let baseline = y.map { NumberFormat.binary16.round($0) }
        let metrics = try TensorMetrics(candidate: candidate, oracle: y, shape: [2, 3], format: .binary16,
                                        condition: [Double](repeating: 2, count: 6), worstCount: 3)
        let verdict = try VerdictPolicy.standard.judge(candidate: candidate, oracle: y, magnitude: magnitude,
                                                       baselines: [baseline], shape: [2, 3], format: .binary16)
        return ReportCase(name: name, tensor: tensor, metrics: metrics, verdict: verdict, durationSeconds: duration)
    }

    static func report(seed: UInt64 = 42, command: String = "mambacheck verify --all",
                       cases: [ReportCase]) -> VerificationReport {
        VerificationReport(toolVersion: "0.1.0", command: command, seed: seed, cases: cases)
    }

    static func standard() throws -> VerificationReport {
        report(cases: [
            try reportCase("2mamba/chunked/float16-acc32"),
            try reportCase("2mamba/recurrent/float16", failing: true, nan: true),
            try reportCase("mamba2s/chunked/float16-acc32", tensor: "final_state", failing: true),
            try reportCase("linear/quadratic/float32"),
        ])
    }
}
