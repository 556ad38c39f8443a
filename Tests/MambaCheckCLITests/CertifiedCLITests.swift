import Foundation
import MambaOracle
import MambaTensors
import MambaVariants
import Testing

/// `mambacheck reference --final-state --grad` writes certified values
/// (Proofs/T7): every Float64 of o, final_state(_z) and every gradient must be
/// the exact value rounded to nearest, bit for bit (or undecided, NaN, where that
/// value is an exact tie), as recomputed by
/// `scripts/crosscheck-certified.py` — mpmath at 700 bits, docs/MATH.md §1
/// written independently, gradients by central differences (no Swift code, no
/// shared formula). Needs /usr/bin/python3 with python3-mpmath (scripts/ensure-deps).
@Suite struct CertifiedCLITests {
    static let script = CLI.packageRoot.appendingPathComponent("scripts/crosscheck-certified.py").path

    @Test(arguments: ["squared-decay-sum", "relu-linear-nodecay-sum", "linear-decay-none", "exponential-decay-sum"])
    func referenceMatchesAnIndependentMpmathEvaluation(core: String) throws {
        let spec = try #require(CoreSpec(name: core))
        var p = CoreProblem.random(spec: spec, batch: 1, heads: 2, length: 5, keyDim: 3, valueDim: 2,
                                   withInitialState: spec.score.hasFeatureMap, seed: 1414)
        if spec.score == .reluLinear {  // a positive first feature: no zero normaliser
            for row in 0..<(p.sequences * p.length) { p.q[row * 3] = abs(p.q[row * 3]); p.k[row * 3] = abs(p.k[row * 3]) }
        }
        let g = GradientProblem.random(core: p, seed: 1414)
        let dir = try CLI.temporaryDirectory("certified")
        defer { try? FileManager.default.removeItem(at: dir) }
        let inputs = dir.appendingPathComponent("inputs.npz"), out = dir.appendingPathComponent("ref.npz")
        try Dumps.writeInputs(p, layout: .bhnd, dtype: .float32, to: inputs)
        var arrays = try TensorFile.read(inputs.path)
        arrays["do"] = TensorData(rounding: Tensor(shape: [p.batch, p.heads, p.length, p.valueDim], storage: g.dO),
                                  to: .float32)
        try TensorFile.write(arrays, to: inputs.path)
        let r = try CLI.run(["reference", "--variant", core, "--inputs", inputs.path, "--output", out.path,
                             "--final-state", "--grad"])
        #expect(r.status == 0 && r.stdout.contains("oracle certified: "), "\(r)")
        let check = try CLI.run([Self.script, "--core", core, "--inputs", inputs.path, "--reference", out.path],
                                executable: "/usr/bin/python3")
        #expect(check.status == 0 && check.stdout.contains(" 0 failed"), "\(check)")
        // The checker's power: one ulp planted in o is reported.
        let planted = try CLI.run([Self.script, "--core", core, "--inputs", inputs.path, "--reference", out.path,
                                   "--plant"], executable: "/usr/bin/python3")
        #expect(planted.status == 0 && planted.stdout.contains(" 1 mismatches"), "\(planted)")
    }

    /// `compare --precision` above the Ziv loop's default cap (4096 bits) starts the
    /// certified oracle there instead of stopping on `maxPrecision < precision`;
    /// the correctly rounded oracle, stored as binary32, passes.
    @Test func comparePrecisionAboveTheDefaultCap() throws {
        let p = CoreProblem.random(spec: try #require(CoreSpec(name: "squared-decay-sum")), length: 4, keyDim: 2,
                                   valueDim: 2, seed: 3)
        let dir = try CLI.temporaryDirectory("certified-cap")
        defer { try? FileManager.default.removeItem(at: dir) }
        let inputs = dir.appendingPathComponent("inputs.npz"), cand = dir.appendingPathComponent("cand.npz")
        try Dumps.writeInputs(p, layout: .bhnd, dtype: .float32, to: inputs)
        try Dumps.writeCandidate(try Reference.quadratic(p).oDouble, problem: p, layout: .bhnd, dtype: .float32, to: cand)
        let r = try CLI.run(["compare", "--variant", "squared-decay-sum", "--inputs", inputs.path, "--candidate", cand.path,
                             "--precision", "8192"])
        #expect(r.status == 0 && r.stdout.contains("oracle certified: all 8 elements"), "\(r)")
    }
}
