import Foundation
import MambaKernels
import MambaOracle
import MambaVariants
import Testing

/// `compare` reads an undeclared chunk length from the candidate's error pattern
/// (`ChunkLengthInference`, Proofs/T9 "An undeclared chunk length"), says so, and
/// never overrides a declared `+chunk=`.
struct ChunkInferenceCLITests {
    @Test func undeclaredLongChunkIsInferredAndDeclaredOneWins() throws {
        let p = CoreProblem.random(spec: CoreSpec(score: .linear, hasDecay: true, normalization: .none),
                                   length: 768, keyDim: 32, valueDim: 32, seed: 41).rounded(to: .float32)
        let dir = try CLI.temporaryDirectory("chunk-inference")
        defer { try? FileManager.default.removeItem(at: dir) }
        let inputs = dir.appendingPathComponent("in.npz"), candidate = dir.appendingPathComponent("c256.npz")
        try Dumps.writeInputs(p, layout: .bhnd, dtype: .float32, to: inputs)
        let o = try CoreKernels.run(p, form: .chunked, mode: .float32, options: KernelOptions(chunkSize: 256)).o
        try Dumps.writeCandidate(o, problem: p, layout: .bhnd, dtype: .float32, to: candidate)
        let report = dir.appendingPathComponent("r.json")
        func judge(_ arith: String) throws -> CLI.Result {
            try CLI.run(["compare", "--variant", "linear-decay-none", "--inputs", inputs.path,
                         "--candidate", candidate.path, "--arith", arith, "--json", report.path])
        }
        let inferred = try judge("float32")
        #expect(inferred.status == 0, "\(inferred)")
        #expect(inferred.stdout.contains("inferred (not declared)"), "\(inferred)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: report)) as? [String: Any])
        let length = try #require(json["inferredChunkLength"] as? Int)
        #expect(length == 128 || length == 256)
        let declared = try judge("float32+chunk=64")
        #expect(declared.status == 1, "declared chunk 64: judged at 64\n\(declared)")
        #expect(!declared.stdout.contains("inferred (not declared)"))
        let plain = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: report)) as? [String: Any])
        #expect(plain["inferredChunkLength"] == nil, "declared: nothing inferred")
    }

    /// A Float32 recurrence with one row moved by 8x its normwise error: without a form
    /// the parallel forms' allowance hides it; the inferred recurrent form catches it,
    /// says so (JSON `inferredForm`), and a declared form is never overridden.
    @Test func undeclaredRecurrentFormIsInferredAndCatchesARowBug() throws {
        let p = CoreProblem.random(spec: CoreSpec(score: .linear, hasDecay: true, normalization: .none),
                                   length: 384, keyDim: 32, valueDim: 32, seed: 43).rounded(to: .float32)
        let dir = try CLI.temporaryDirectory("form-inference")
        defer { try? FileManager.default.removeItem(at: dir) }
        let inputs = dir.appendingPathComponent("in.npz")
        try Dumps.writeInputs(p, layout: .bhnd, dtype: .float32, to: inputs)
        let o = try CoreKernels.run(p, form: .recurrent, mode: .float32).o.map { Double(Float($0)) }
        let report = dir.appendingPathComponent("r.json")
        func judge(_ values: [Double], _ arith: String) throws -> (CLI.Result, [String: Any]) {
            let candidate = dir.appendingPathComponent("c.npz")
            try? FileManager.default.removeItem(at: candidate)
            try Dumps.writeCandidate(values, problem: p, layout: .bhnd, dtype: .float32, to: candidate)
            let r = try CLI.run(["compare", "--variant", "linear-decay-none", "--inputs", inputs.path,
                                 "--candidate", candidate.path, "--arith", arith, "--json", report.path])
            let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: report)) as? [String: Any])
            return (r, json)
        }
        let (correct, json) = try judge(o, "float32")
        #expect(correct.status == 0, "\(correct)")
        #expect(json["inferredForm"] as? String == "recurrent", "\(correct)")
        #expect(correct.stdout.contains("recurrent form inferred (not declared)"))
        // The row bug: 8x the kernel's normwise error, on one row.
        let y = try Reference.quadratic(p, precision: 128, finalState: false).oDouble
        var e = 0.0, n = 0.0, rowNorm = 0.0
        for (a, b) in zip(o, y) { e += (a - b) * (a - b); n += b * b }
        for d in 0..<32 { rowNorm += y[200 * 32 + d] * y[200 * 32 + d] }
        var bug = o
        for d in 0..<32 {
            bug[200 * 32 + d] += (d % 2 == 0 ? 1 : -1) * 8 * (e / n).squareRoot() * (rowNorm / 32).squareRoot()
        }
        let (caught, _) = try judge(bug, "float32")
        #expect(caught.status == 1, "\(caught)")
        let (declared, plain) = try judge(bug, "float32+form=chunked")
        #expect(!declared.stdout.contains("recurrent form inferred"), "\(declared)")
        // Judged against every form it hides in the parallel forms' allowance: the inference is what catches it.
        #expect(declared.status == 0, "\(declared)")
        #expect(plain["inferredForm"] == nil, "declared: nothing inferred")
    }
}
