import Foundation
import MambaKernels
import MambaOracle
import MambaPrecision
import MambaTensors
import MambaVariants

/// Self-checks of the foundations, run first by `mambacheck verify`: MPFR
/// constants against published digits, format rounding against the
/// hardware's, tensor-file round trips, and the oracle's own forms against
/// each other. Each is an *exact* check (policy with zero allowance) except
/// the oracle forms, which must agree to 2⁻¹⁰⁰ relative (Proofs/T1, T7).
public enum SelfChecks {
    /// Zero allowance: the candidate must equal the reference exactly.
    static let exact = VerdictPolicy(factor: 0, ulpAllowance: 0, boundFactor: 0)

    public static func run() throws -> [ReportCase] {
        var cases: [ReportCase] = []
        // 1. π and e at 256 bits against their first 70 significant digits.
        let piDigits = "3.141592653589793238462643383279502884197169399375105820974944592307816"
        let eDigits = "2.718281828459045235360287471352662497757247093699959574966967627724077"
        let pi = BigFloat.pi(precision: 256)
        let e = BigFloat.exp(BigFloat(1.0, precision: 256))
        let published = [BigFloat(piDigits, precision: 256)!, BigFloat(eDigits, precision: 256)!]
        // 70 digits determine the constants to within 10^-69 ≈ 2^-229: the computed
        // values must match the published ones to 2^-190 (far below Double's 2^-53).
        let diffs = [(BigFloat(pi, precision: 200) - BigFloat(published[0], precision: 200)).doubleValue,
                     (BigFloat(e, precision: 200) - BigFloat(published[1], precision: 200)).doubleValue]
        cases.append(try exactCase("self/mpfr-constants/256-bit", tensor: "pi,e - published",
                                   candidate: diffs.map { abs($0) <= 0x1p-190 ? 0 : $0 }, reference: [0, 0]))
        // 2. Rounding to binary16 through MPFR equals the hardware conversion.
        var g = SeededGenerator(seed: 16)
        let xs = (0..<20_000).map { _ in g.normal(std: 100) * pow(2, Double(Int(g.uniform(-20, 20)))) }
        cases.append(try exactCase("self/format-rounding/binary16", tensor: "round",
                                   candidate: xs.map { NumberFormat.binary16.round($0) },
                                   reference: xs.map { Double(Float(Float16($0))) }))
        cases.append(try exactCase("self/format-rounding/binary32", tensor: "round",
                                   candidate: xs.map { NumberFormat.binary32.round($0) },
                                   reference: xs.map { Double(Float($0)) }))
        // 3. Tensor files: write and read back every float dtype, bit for bit.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mambacheck-selfcheck-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let values = (0..<64).map { _ in Double(Float16(g.normal())) } + [0, -0.0, 65504, -65504, 0x1p-24]
        for (ext, dtypes) in [("npz", [DType.float16, .float32, .float64]), ("safetensors", [.float16, .bfloat16, .float32, .float64])] {
            for dt in dtypes {
                let path = dir.appendingPathComponent("t-\(dt).\(ext)").path
                let tensor = Tensor(shape: [values.count], storage: values)
                try TensorFile.write(["x": tensor], to: path, dtype: dt)
                let back = try TensorFile.read(path)["x"]!.asFloat64().storage
                let expected = TensorData(rounding: tensor, to: dt)
                cases.append(try exactCase("self/file-roundtrip/\(ext)-\(dt)", tensor: "x", candidate: back,
                                           reference: try expected.asFloat64().storage))
            }
        }
        // 4. The oracle's three MPFR forms agree (2mamba core with an initial state).
        let spec = CoreSpec(score: .squared, hasDecay: true, normalization: .sum)
        let p = CoreProblem.random(spec: spec, heads: 2, length: 24, keyDim: 4, valueDim: 3, withInitialState: true, seed: 7)
        let quad = try Reference.quadratic(p)
        for (name, other) in [("recurrent", try Reference.recurrent(p)), ("chunked", try Reference.chunked(p, chunkSize: 5))] {
            let rel = zip(quad.o, other.o).map { a, b in
                ((a - b).doubleValue.magnitude / max(a.doubleValue.magnitude, 1e-300)) <= 0x1p-100 ? 0.0 : 1.0
            }
            cases.append(try exactCase("self/oracle-forms/quadratic-vs-\(name)", tensor: "o within 2^-100",
                                       candidate: rel, reference: rel.map { _ in 0 }))
        }
        return cases
    }

    static func exactCase(_ name: String, tensor: String, candidate: [Double], reference: [Double]) throws -> ReportCase {
        let shape = [candidate.count]
        let metrics = try TensorMetrics(candidate: candidate, oracle: reference, shape: shape, format: .binary64)
        let verdict = try exact.judge(candidate: candidate, oracle: reference,
                                      magnitude: reference.map { abs($0) }, baselines: [], shape: shape, format: .binary64)
        return ReportCase(name: name, tensor: tensor, metrics: metrics, verdict: verdict, durationSeconds: 0)
    }
}
