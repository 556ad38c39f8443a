import Foundation
import MambaKernels
import MambaOracle
import MambaTensors
import MambaVariants
import MambaVerification
import Testing

/// The gradient path of `compare` and `reference --grad`, end to end
/// (Proofs/T11): a backward pass's dumped gradients pass, a perturbed one
/// fails with exit 1, a missing `do` is an input error (exit 2).
@Suite("compare: gradients")
struct GradientCLITests {
    static func writeGradientDump(_ g: GradientProblem, grads: CoreGradients, perturbDK: Double, dir: URL)
        throws -> (inputs: URL, candidate: URL)
    {
        let p = g.core
        let inputs = dir.appendingPathComponent("inputs.npz"), cand = dir.appendingPathComponent("candidate.npz")
        try Dumps.writeInputs(p, layout: .bhnd, dtype: .float32, to: inputs)
        // add `do` to the inputs file
        var arrays = try TensorFile.read(inputs.path)
        arrays["do"] = TensorData(rounding: Tensor(shape: [p.batch, p.heads, p.length, p.valueDim], storage: g.dO),
                                  to: .float32)
        try TensorFile.write(arrays, to: inputs.path)
        let shapeK = [p.batch, p.heads, p.length, p.keyDim], shapeV = [p.batch, p.heads, p.length, p.valueDim]
        var out: [String: Tensor<Double>] = [
            "dq": Tensor(shape: shapeK, storage: grads.dq),
            "dk": Tensor(shape: shapeK, storage: grads.dk.map { $0 * perturbDK }),
            "dv": Tensor(shape: shapeV, storage: grads.dv),
        ]
        if let da = grads.da { out["da"] = Tensor(shape: [p.batch, p.heads, p.length], storage: da) }
        try TensorFile.write(out, to: cand.path, dtype: .float32)
        return (inputs, cand)
    }

    @Test(arguments: ["squared-decay-sum", "linear-decay-none"])
    func backwardDumpPassesAndPerturbedFails(_ core: String) throws {
        let p = CoreProblem.random(spec: CoreSpec(name: core)!, batch: 1, heads: 2, length: 70, keyDim: 8, valueDim: 8,
                                   seed: 70)
        let g = GradientProblem.random(core: p, seed: 71)
        let grads = try CoreBackward.run(g, form: .chunked, mode: .float32, options: KernelOptions(chunkSize: 32))
        for (factor, expected) in [(1.0, Int32(0)), (1.01, Int32(1))] {
            let dir = try CLI.temporaryDirectory("grad")
            defer { try? FileManager.default.removeItem(at: dir) }
            let (inputs, cand) = try Self.writeGradientDump(g, grads: grads, perturbDK: factor, dir: dir)
            let r = try CLI.run(["compare", "--variant", core, "--inputs", inputs.path, "--candidate", cand.path])
            #expect(r.status == expected, "\(core), dk × \(factor): expected exit \(expected)\n\(r)")
        }
    }

    @Test func referenceGradWritesOracleGradientsAndNeedsDO() throws {
        let p = CoreProblem.random(spec: CoreSpec(name: "squared-decay-sum")!, length: 12, keyDim: 4, valueDim: 3, seed: 12)
        let g = GradientProblem.random(core: p, seed: 13)
        let grads = try CoreBackward.run(g, form: .quadratic, mode: .float32)
        let dir = try CLI.temporaryDirectory("refgrad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (inputs, _) = try Self.writeGradientDump(g, grads: grads, perturbDK: 1, dir: dir)
        let out = dir.appendingPathComponent("ref.npz")
        let r = try CLI.run(["reference", "--variant", "2mamba", "--inputs", inputs.path, "--output", out.path, "--grad"])
        #expect(r.status == 0, "\(r)")
        let arrays = try TensorFile.read(out.path)
        let oracle = try Reference.gradients(g)
        for (name, values) in [("dq", oracle.dq), ("dk", oracle.dk), ("dv", oracle.dv)] {
            let written = try #require(arrays[name], "reference --grad did not write \(name)")
            let x = try written.asFloat64().storage
            // Float64 output of a 128-bit oracle: each element within 1 ulp of Double.
            for (a, b) in zip(x, values.map(\.doubleValue)) {
                #expect(abs(a - b) <= 2 * b.ulp, "\(name): \(a) vs \(b)")
            }
        }
        // Without `do` the gradient oracle cannot run: input error, exit 2.
        let noDO = dir.appendingPathComponent("nodo.npz")
        try Dumps.writeInputs(p, layout: .bhnd, dtype: .float32, to: noDO)
        let bad = try CLI.run(["reference", "--variant", "2mamba", "--inputs", noDO.path, "--output", out.path, "--grad"])
        #expect(bad.status == 2 && bad.stderr.contains("do"), "\(bad)")
    }
}
