import MambaKernels
import MambaOracle
import MambaPrecision
import MambaVariants
@testable import MambaVerification
import Testing

/// An undeclared chunk length is read from the candidate's error pattern
/// (Proofs/T9, "An undeclared chunk length"): only a kernel whose rows deep in
/// long chunks err more is taken for one; bugs are not.
@Suite("Chunk length inference")
struct ChunkLengthInferenceTests {
    /// The generator's strong decays (a ≈ −0.7), three 256-token chunks.
    static let problem = CoreProblem.random(spec: CoreSpec(score: .linear, hasDecay: true, normalization: .none),
                                            length: 768, keyDim: 32, valueDim: 32, seed: 41)
    static let float32 = DeclaredArithmetic.named("float32")!

    static func chunked(_ c: Int) throws -> [Double] {
        try CoreKernels.run(problem, form: .chunked, mode: .float32, options: KernelOptions(chunkSize: c)).o
            .map { Double(Float($0)) }
    }

    @Test func aLongChunkKernelIsRecognisedAndPasses() throws {
        let ref = try Reference.quadratic(Self.problem, precision: 128, finalState: false)
        let o = try Self.chunked(256)
        let inferred = try #require(ChunkLengthInference.infer(Self.problem, candidate: o, oracle: ref.oDouble,
                                                               arithmetic: Self.float32))
        #expect(inferred.chunkSize >= 128 && inferred.contrast >= ChunkLengthInference.minimumContrast)
        var a = Self.float32
        a.chunkSize = inferred.chunkSize
        let cases = try KernelComparison.compare(problem: Self.problem, candidate: CandidateTensors(o: o), name: "c256",
                                                 settings: ComparisonSettings(format: .binary32, arithmetic: a), oracle: ref)
        #expect(cases.allSatisfy { $0.passed }, "\(cases.map { $0.verdict.reason })")
    }

    @Test func declaredLengthAndBugsAreNotTakenForALongChunk() throws {
        let ref = try Reference.quadratic(Self.problem, precision: 128, finalState: false)
        let y = ref.oDouble
        let o = try Self.chunked(64)
        #expect(ChunkLengthInference.infer(Self.problem, candidate: o, oracle: y, arithmetic: Self.float32) == nil)
        var e = 0.0, n = 0.0
        for (a, b) in zip(o, y) { e += (a - b) * (a - b); n += b * b }
        let eps = (e / n).squareRoot()
        let uniform = o.map { Double(Float($0 * (1 + 8 * eps))) }
        #expect(ChunkLengthInference.infer(Self.problem, candidate: uniform, oracle: y, arithmetic: Self.float32) == nil)
        var row = o
        for d in 0..<32 { row[300 * 32 + d] *= 1 + 8 * eps }
        #expect(ChunkLengthInference.infer(Self.problem, candidate: row, oracle: y, arithmetic: Self.float32) == nil)
        // Only true Float32 shows the pattern: TF32 operands and 16-bit profiles are never inferred.
        let long = try Self.chunked(256)
        #expect(ChunkLengthInference.infer(Self.problem, candidate: long, oracle: y,
                                           arithmetic: DeclaredArithmetic.named("tf32")!) == nil)
    }
}
