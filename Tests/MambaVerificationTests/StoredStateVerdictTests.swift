import MambaKernels
import MambaPrecision
import MambaVariants
@testable import MambaVerification
import Testing

/// A declared 16-bit stored state (`+state=bfloat16`) and a final state that was
/// not carried in it (Proofs/T9, "A stored state that was not carried in 16 bits").
@Suite("Stored-state verdict")
struct StoredStateVerdictTests {
    /// Linear attention without decay (FLA's chunk_linear_attn), bf16 inputs.
    static let problem = CoreProblem.random(spec: CoreSpec(score: .linear, hasDecay: false, normalization: .none),
                                            length: 512, keyDim: 16, valueDim: 16, storage: .bfloat16, seed: 11)
    static let settings = ComparisonSettings(format: .bfloat16, arithmetic: DeclaredArithmetic.named("bf16+state=bfloat16"),
                                             finalStateFormat: .binary32)

    static func run(_ storage: StateStorage, tensorCore: Bool = false) throws -> CoreOutput {
        try CoreKernels.run(problem, form: .chunked, mode: .bfloat16Acc32,
                            options: KernelOptions(chunkSize: 32, stateStorage: storage,
                                                   tensorCoreAccumulation: tensorCore))
    }

    static func judge(_ out: CoreOutput, stateScale: Double = 1) throws -> [ReportCase] {
        var state = try #require(out.finalState)
        state.s = state.s.map { $0 * stateScale }
        return try KernelComparison.compare(problem: problem, candidate: CandidateTensors(o: out.o, finalState: state),
                                            name: "chunked", settings: settings)
    }

    /// A kernel that carries its state in Float32 through tensor-core products
    /// (FLA's chunk kernels) passes, and its final state is judged against
    /// Float32-carry baselines: a final state off by 8x its own relative error
    /// then fails. So does one that accumulates by round-to-nearest, whose error
    /// is smaller. A kernel that really carries the state in bf16 passes too
    /// (its final state holds only bf16 values).
    @Test func finalStateCarriedInFloat32IsJudgedAsSuch() throws {
        let nearest = try Self.judge(try Self.run(.float32))
        #expect(nearest.allSatisfy { $0.passed }, "\(nearest.map(\.verdict.reason))")
        let float32Carry = try Self.run(.float32, tensorCore: true)
        let good = try Self.judge(float32Carry)
        #expect(good.allSatisfy { $0.passed }, "\(good.map(\.verdict.reason))")
        let state = try #require(good.first { $0.tensor == "final_state" })
        // The Float32-carry yardstick: far below one bf16 rounding (u = 2⁻⁹) of the state.
        let s = try #require(float32Carry.finalState).s
        #expect(state.verdict.normwise.allowance < 1e-4 * Self.norm(s))
        let off = 1 + 8 * Swift.max(state.metrics.normwiseRelativeError, NumberFormat.binary32.unitRoundoff)
        let bug = try Self.judge(float32Carry, stateScale: off)
        #expect(!(bug.first { $0.tensor == "final_state" }?.passed ?? true))

        let bf16Carry = try Self.run(.bfloat16)
        let carried = try #require(bf16Carry.finalState)
        #expect(carried.s.allSatisfy { NumberFormat.bfloat16.round($0) == $0 })
        let also = try Self.judge(bf16Carry)
        #expect(also.allSatisfy { $0.passed }, "\(also.map(\.verdict.reason))")
    }

    static func norm(_ x: [Double]) -> Double { x.reduce(0) { $0 + $1 * $1 }.squareRoot() }
}
