import Foundation
import MambaKernels
import MambaTensors
import MambaVariants
import MambaVerification
import Testing

/// `mambacheck compare` end to end: dumps written as a user's script would,
/// judged by the built executable; exit codes 0 (pass) and 1 (verification failure).
@Suite("compare: correct and planted-bug candidates")
struct CompareCLITests {
    static let seeds: [UInt64] = [11, 22, 33]
    /// N = 100 with chunk 64: a partial last chunk of 36 tokens.
    static let length = 100, headDim = 16, chunk = 64

    static func problem(_ core: String, dtype: DType, seed: UInt64, initialState: Bool) -> CoreProblem {
        CoreProblem.random(spec: CoreSpec(name: core)!, batch: 2, heads: 2, length: length, keyDim: headDim,
                           valueDim: headDim, storage: Dumps.storage(for: dtype), withInitialState: initialState,
                           seed: seed)
    }

    /// Writes inputs and candidate, runs `compare`, returns the result and the over-allowance numbers.
    static func compare(_ p: CoreProblem, candidate o: [Double], state: CoreState? = nil, core: String,
                        layout: TensorLayout, dtype: DType, extra: [String] = [])
        throws -> (CLI.Result, (elementwise: Double, normwise: Double, failing: Int, judged: Int))
    {
        let dir = try CLI.temporaryDirectory("compare")
        defer { try? FileManager.default.removeItem(at: dir) }
        let inputs = dir.appendingPathComponent("inputs.npz"), cand = dir.appendingPathComponent("candidate.npz")
        let json = dir.appendingPathComponent("report.json")
        try Dumps.writeInputs(p, layout: layout, dtype: dtype, to: inputs)
        try Dumps.writeCandidate(o, state: state, problem: p, layout: layout, dtype: dtype, to: cand)
        let r = try CLI.run(["compare", "--variant", core, "--inputs", inputs.path, "--candidate", cand.path,
                             "--layout", layout.rawValue, "--json", json.path] + extra)
        let numbers = FileManager.default.fileExists(atPath: json.path) ? try Dumps.overAllowance(report: json) : (0, 0, 0, 0)
        return (r, numbers)
    }

    // MARK: correct dumps pass

    struct PassCase: CustomStringConvertible, Sendable {
        var core: String
        var layout: TensorLayout
        var dtype: DType
        var initialState: Bool
        var description: String { "\(core) \(layout.rawValue) \(dtype)\(initialState ? " +state" : "")" }
    }

    static let passCases: [PassCase] = [
        .init(core: "squared-decay-sum", layout: .bhnd, dtype: .float32, initialState: true),
        .init(core: "squared-decay-sum", layout: .bnhd, dtype: .float32, initialState: true),
        .init(core: "squared-decay-sum", layout: .bhnd, dtype: .float16, initialState: true),
        .init(core: "squared-decay-sum", layout: .bnhd, dtype: .float16, initialState: true),
        .init(core: "linear-decay-none", layout: .bnhd, dtype: .float16, initialState: true),
        .init(core: "exponential-decay-sum", layout: .bnhd, dtype: .float32, initialState: false),
    ]

    /// MambaCheck's own recurrent kernel (a form the verdict's baselines — chunked and
    /// quadratic — do not include) in the mode that models the dtype, with its final state.
    @Test("a correct dump passes (exit 0)", arguments: passCases)
    func correctDumpPasses(_ c: PassCase) throws {
        let p = Self.problem(c.core, dtype: c.dtype, seed: 7, initialState: c.initialState)
        let mode: PrecisionMode = c.dtype == .float16 ? .float16Acc32 : .float32
        let out = try CoreKernels.run(p, form: .recurrent, mode: mode, options: KernelOptions(chunkSize: Self.chunk))
        let (r, n) = try Self.compare(p, candidate: out.o, state: out.finalState, core: c.core, layout: c.layout,
                                      dtype: c.dtype)
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.contains("PASS"), "\(r)")
        if out.finalState != nil { #expect(r.stdout.contains("final_state"), "\(r)") }
        print("PASS-CASE \(c): worst |err|/τ = \(String(format: "%.3g", n.elementwise)), normwise \(String(format: "%.3g", n.normwise))")
    }

    // MARK: planted bugs fail

    struct BugCase: CustomStringConvertible, Sendable {
        var bug: PlantedBug?
        var core: String
        var dtype: DType
        var layout: TensorLayout
        var description: String { "\(bug?.rawValue ?? "no bug") on \(core) \(dtype) \(layout.rawValue)" }
    }

    /// Each planted bug on two cores, N = 100 with chunk 64 (partial last
    /// chunk), B = H = 2, dk = dv = 16, seeds 11, 22, 33. How far over the
    /// allowance (smallest over the seeds of the worst element's |err|/τ;
    /// normwise ‖err‖/allowance in parentheses), measured with the verdict of
    /// commit 9267dbf (KernelComparison with the √(n/16) length factor); every
    /// run prints the current numbers ("BUG …" lines):
    ///
    /// | bug | core, dtype | over the allowance |
    /// |---|---|---|
    /// | off-by-one decay | squared-decay-sum f32 | 3.0e4 (577) |
    /// | off-by-one decay | linear-decay-none f16 | 51 (30) |
    /// | leaked next token | squared-decay-sum f16 | 1.2e3 (23) |
    /// | leaked next token | relu-linear-nodecay-sum f32 | 6.2e6 (7.5e4) |
    /// | missing √2 (state path) | squared-decay-sum f32 | 9.6e3 (215) |
    /// | missing √2 (state path) | squared-nodecay-none f16 | 16 (4.0) |
    /// | scale applied twice | linear-decay-none f32 | 1.1e5 (9.5e4) |
    /// | scale applied twice | squared-decay-none f16 | 41 (45) |
    /// | last partial chunk dropped | squared-decay-sum f32 | 8.9e4 (2.6e3) |
    /// | last partial chunk dropped | linear-decay-none f16 | 72 (35) |
    /// | Float16 accumulation | squared-decay-sum f16 | 1.06 (0.13): 1–31 failing elements — thin |
    /// | Float16 accumulation | linear-decay-none f16 | 3.9 (0.35) |
    ///
    /// Float16 accumulation is caught through the Float16 prefix sums of the
    /// decay; without decay it is not caught at N = 100 (see
    /// `Float16AccumulationWithoutDecay`). Scale-twice on a sum-normalised
    /// squared core cancels exactly and is correctly not flagged (`scaleTwiceCancels`).
    static let bugCases: [BugCase] = [
        .init(bug: .offByOneDecay, core: "squared-decay-sum", dtype: .float32, layout: .bhnd),
        .init(bug: .offByOneDecay, core: "linear-decay-none", dtype: .float16, layout: .bnhd),
        .init(bug: .leakedNextToken, core: "squared-decay-sum", dtype: .float16, layout: .bhnd),
        .init(bug: .leakedNextToken, core: "relu-linear-nodecay-sum", dtype: .float32, layout: .bnhd),
        .init(bug: .missingSqrt2, core: "squared-decay-sum", dtype: .float32, layout: .bnhd),
        .init(bug: .missingSqrt2, core: "squared-nodecay-none", dtype: .float16, layout: .bhnd),
        .init(bug: .scaleTwice, core: "linear-decay-none", dtype: .float32, layout: .bhnd),
        .init(bug: .scaleTwice, core: "squared-decay-none", dtype: .float16, layout: .bnhd),
        .init(bug: .droppedLastChunk, core: "squared-decay-sum", dtype: .float32, layout: .bhnd),
        .init(bug: .droppedLastChunk, core: "linear-decay-none", dtype: .float16, layout: .bnhd),
        .init(bug: .float16Accumulation, core: "squared-decay-sum", dtype: .float16, layout: .bhnd),
        .init(bug: .float16Accumulation, core: "linear-decay-none", dtype: .float16, layout: .bnhd),
    ]

    @Test("a planted bug fails (exit 1) on 3 seeds", arguments: bugCases)
    func plantedBugFails(_ c: BugCase) throws {
        for seed in Self.seeds {
            let p = Self.problem(c.core, dtype: c.dtype, seed: seed, initialState: false)
            let o = PlantedBugKernel.run(p, bug: c.bug, chunk: Self.chunk)
            let (r, n) = try Self.compare(p, candidate: o, core: c.core, layout: c.layout, dtype: c.dtype)
            print("BUG \(c) seed \(seed): exit \(r.status), worst |err|/τ = \(String(format: "%.3g", n.elementwise)), "
                  + "normwise err/allowance = \(String(format: "%.3g", n.normwise)), failing \(n.failing)/\(n.judged)")
            #expect(r.status == 1, "seed \(seed): \(r)")
            #expect(r.stderr.contains("FAIL"), "seed \(seed): \(r)")
        }
    }

    /// Controls: the same evaluator without a bug passes on every core and
    /// dtype used above, so each failure above is the bug's, not the evaluator's.
    @Test("the planted-bug evaluator without a bug passes (exit 0)",
          arguments: Set(bugCases.map { "\($0.core)|\($0.dtype.rawValue)" }).sorted())
    func controlPasses(_ key: String) throws {
        let parts = key.split(separator: "|").map(String.init)
        let dtype = DType(rawValue: parts[1])!
        for seed in Self.seeds {
            let p = Self.problem(parts[0], dtype: dtype, seed: seed, initialState: false)
            let o = PlantedBugKernel.run(p, bug: nil, chunk: Self.chunk)
            let (r, n) = try Self.compare(p, candidate: o, core: parts[0], layout: .bhnd, dtype: dtype)
            print("CONTROL \(parts[0]) \(dtype) seed \(seed): worst |err|/τ = \(String(format: "%.3g", n.elementwise))")
            #expect(r.status == 0, "seed \(seed): \(r)")
        }
    }

    /// For sum-normalised squared scores the scale cancels exactly
    /// (`(s²x)²/Σ(s²x)² = x²/Σx²`), so "scale applied twice" is invisible by
    /// design: the output is the correct one. It must NOT be flagged.
    @Test("scale applied twice cancels under sum normalisation: not flagged (exit 0)")
    func scaleTwiceCancels() throws {
        for seed in Self.seeds {
            for dtype in [DType.float32, .float16] {
                let p = Self.problem("squared-decay-sum", dtype: dtype, seed: seed, initialState: false)
                let o = PlantedBugKernel.run(p, bug: .scaleTwice, chunk: Self.chunk)
                let (r, n) = try Self.compare(p, candidate: o, core: "squared-decay-sum", layout: .bhnd, dtype: dtype)
                print("SCALE-CANCELS squared-decay-sum \(dtype) seed \(seed): exit \(r.status), worst |err|/τ = \(String(format: "%.3g", n.elementwise))")
                #expect(r.status == 0, "seed \(seed) \(dtype): \(r)")
            }
        }
    }

    /// MambaCheck's own pure-Float16 kernels (every operation in binary16)
    /// judged as a Float16 dump, whose model is Float16 storage with Float32
    /// accumulation.
    ///
    /// Float16 accumulation costs ≈ √N·u₁₆ of the output's magnitude, against
    /// an allowance of 8·u₁₆ of the magnitude plus the rounding of a stored
    /// state (which a correct tensor-core kernel also incurs, Proofs/T9), so
    /// detection needs N large enough; the test uses N = 1024 (worst
    /// |err|/τ 1.8–3.2 on linear-decay-none). On the 2Mamba core
    /// (squared-decay-sum) MambaCheck's pure-binary16 chunked kernel is at the
    /// detection limit — |err|/τ 0.70–1.2 at N = 100 and 1.01–1.58 at
    /// N = 1024, one or two elements — so it is not asserted here; this limit
    /// is stated in Proofs/T9 and the closing note. The planted
    /// float16-accumulation bug on that core is caught (`plantedBugFails`).
    @Test("MambaCheck's pure-float16 kernel judged as float16 (Float32-accumulation model) fails",
          arguments: ["linear-decay-none"])
    func pureHalfKernelFails(_ core: String) throws {
        for seed in Self.seeds {
            let p = CoreProblem.random(spec: CoreSpec(name: core)!, batch: 1, heads: 2, length: 1024,
                                       keyDim: Self.headDim, valueDim: Self.headDim, storage: .float16, seed: seed)
            let out = try CoreKernels.run(p, form: .chunked, mode: .float16, options: KernelOptions(chunkSize: Self.chunk))
            let (r, n) = try Self.compare(p, candidate: out.o, core: core, layout: .bhnd, dtype: .float16)
            print("PURE-HALF \(core) seed \(seed): exit \(r.status), worst |err|/τ = \(String(format: "%.3g", n.elementwise)), "
                  + "normwise err/allowance = \(String(format: "%.3g", n.normwise)), failing \(n.failing)/\(n.judged)")
            #expect(r.status == 1, "seed \(seed): \(r)")
        }
    }
}

/// Float16 accumulation on cores *without* decay (Proofs/T9, Claim 2). The
/// only binary16 hazard there is the rounding of the N additions, whose error
/// grows like √N·u₁₆·magnitude against an allowance of 8·u₁₆·magnitude (+ 2×
/// the Float32-accumulation baselines' error): at N = 100 it is measured
/// *within* the allowance (worst |err|/τ over seeds 100–114:
/// squared-nodecay-sum 0.42–2.1, relu-linear-nodecay-sum 0.23–0.42 — a
/// detection limit, stated in the closing note), so the test uses N = 4096,
/// where √N = 64 puts it well above, and asserts detection on every seed.
/// (On decayed cores the Float16 prefix sums make Γ wrong by ~3% and it is
/// caught at N = 100, see `plantedBugFails`.)
@Suite("compare: float16 accumulation without decay")
struct Float16AccumulationWithoutDecay {
    @Test(arguments: ["squared-nodecay-sum", "relu-linear-nodecay-sum"])
    func float16AccumulationWithoutDecayIsCaughtAtN4096(_ core: String) throws {
        for seed in CompareCLITests.seeds {
            let p = CoreProblem.random(spec: CoreSpec(name: core)!, batch: 1, heads: 1, length: 4096,
                                       keyDim: CompareCLITests.headDim, valueDim: CompareCLITests.headDim,
                                       storage: .float16, seed: seed)
            let o = PlantedBugKernel.run(p, bug: .float16Accumulation, chunk: CompareCLITests.chunk)
            let (r, n) = try CompareCLITests.compare(p, candidate: o, core: core, layout: .bhnd, dtype: .float16)
            #expect(r.status == 1, "float16 accumulation on \(core), N = 4096, seed \(seed) not caught: worst |err|/τ = \(n.elementwise), normwise \(n.normwise); \(r)")
        }
    }
}
