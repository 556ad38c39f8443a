import Foundation
import MambaKernels
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
}
