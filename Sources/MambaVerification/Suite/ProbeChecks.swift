import MambaKernels
import MambaPrecision
import MambaTensors
import MambaVariants

/// The outcome of one property probe.
public enum ProbeStatus: String, Codable, Sendable {
    case pass, fail
    /// The property does not apply (e.g. no second entry point, no finite
    /// state): never counted as a pass.
    case notApplicable = "not-applicable"
}

/// The checks behind each property, on tensors in memory (shared by
/// `suite judge` and `fuzz`). Tolerances are the verdict's (Proofs/T9);
/// causality and determinism are bit-for-bit.
public enum ProbeChecks {
    /// The verdicts of a kernel's outputs on `problem`, as `mambacheck compare`
    /// gives them: `o`, `final_state`(`_z`) when returned, and the gradients when
    /// returned and `inputs` holds `do`. The storage formats come from the dtypes.
    public static func verdicts(problem: CoreProblem, inputs: [String: TensorData], inputsFile: String,
                                outputs: [String: TensorData], outputsFile: String, arith: DeclaredArithmetic,
                                policy: VerdictPolicy, precision: Int, explain: Bool,
                                name: String, oracles: OracleCache? = nil) throws -> [ReportCase] {
        let oShape = [problem.batch, problem.heads, problem.length, problem.valueDim]
        let o = try KernelDump.candidate(outputs, name: "o", file: outputsFile, layout: .bhnd, expectedCanonicalShape: oShape)
        let state = try finalState(outputs, file: outputsFile, problem: problem)
        let format = DumpFormat.inferred(outputs["o"]!.dtype)
        let settings = ComparisonSettings(format: format, policy: policy, precision: precision, arithmetic: arith,
                                          finalStateFormat: outputs["final_state"].map { DumpFormat.inferred($0.dtype) },
                                          explainFailures: explain)
        let oracle = try oracles?.output(problem, precision: precision, finalState: state != nil)
        var cases = try KernelComparison.compare(problem: problem, candidate: CandidateTensors(o: o, finalState: state),
                                                 name: name, settings: settings, oracle: oracle)
        let gradientPresent = KernelDump.gradientNames.joined().contains { outputs[$0] != nil }
        if gradientPresent, inputs["do"] != nil {
            let gp = try KernelDump.gradientProblem(inputs, file: inputsFile, core: problem, layout: .bhnd)
            let g = try KernelDump.candidateGradients(outputs, file: outputsFile, core: problem, layout: .bhnd)
            let oracle = g.isEmpty ? nil : try oracles?.gradients(gp, precision: precision)
            cases += try GradientComparison.compare(problem: gp, candidate: g, name: name, settings: settings,
                                                    oracle: oracle)
        }
        return cases
    }

    /// The candidate's `final_state`(`_z`), checked against the problem's shape; nil when absent.
    public static func finalState(_ outputs: [String: TensorData], file: String, problem: CoreProblem) throws -> CoreState? {
        guard outputs["final_state"] != nil, let f = problem.featureDim else { return nil }
        let s = try KernelDump.candidate(outputs, name: "final_state", file: file, layout: nil,
                                         expectedCanonicalShape: [problem.batch, problem.heads, f, problem.valueDim])
        var z: [Double]? = nil
        if outputs["final_state_z"] != nil {
            z = try KernelDump.candidate(outputs, name: "final_state_z", file: file, layout: nil,
                                         expectedCanonicalShape: [problem.batch, problem.heads, f])
        }
        return CoreState(s: s, z: z)
    }

    /// Causality (Proofs/T12 §1): `o[b, h, i, c]` bit-identical for every
    /// `i ≤ t` between the run on the inputs and the run on the inputs with
    /// tokens after `t` perturbed. Returns nil when it holds, else the first
    /// differing element.
    public static func causality(_ a: [Double], _ b: [Double], heads: Int, sequences: Int, length n: Int, width: Int,
                                 through t: Int) -> String? {
        for s in 0..<sequences {
            for i in 0...Swift.min(t, n - 1) {
                for c in 0..<width {
                    let e = (s * n + i) * width + c
                    if a[e].bitPattern != b[e].bitPattern {
                        return "o[\(s / heads), \(s % heads), \(i), \(c)] (bhnd) changed "
                            + "from \(a[e]) to \(b[e]) when only tokens after \(t) were perturbed"
                    }
                }
            }
        }
        return nil
    }

    /// Determinism: the two output files hold the same arrays, dtypes,
    /// shapes and bits. Returns nil when they do, else the first difference.
    public static func identical(_ a: [String: TensorData], _ b: [String: TensorData]) throws -> String? {
        if Set(a.keys) != Set(b.keys) {
            return "the runs returned different arrays: \(a.keys.sorted()) vs \(b.keys.sorted())"
        }
        for name in a.keys.sorted() {
            let x = a[name]!, y = b[name]!
            guard x.dtype == y.dtype, x.shape == y.shape else {
                return "\(name): \(x.dtype)\(x.shape) vs \(y.dtype)\(y.shape)"
            }
            guard x.dtype.isFloatingPoint else { continue }
            let u = try x.asFloat64().storage, v = try y.asFloat64().storage
            if let i = u.indices.first(where: { u[$0].bitPattern != v[$0].bitPattern }) {
                return "\(name)[flat \(i)]: \(u[i]) in the first run, \(v[i]) in the second (same inputs)"
            }
        }
        return nil
    }

    /// State hand-off (Proofs/T12 §2): the outputs of the first `N₁` tokens
    /// joined with those of the rest, started from the kernel's own final
    /// state, judged by the verdict as one candidate for the whole problem
    /// (and the rest's final state as the whole's). When the handed state is
    /// stored in 16 bits, the declared arithmetic gains `+state=` that format:
    /// the hand-off rounds the state there once, as such a kernel does.
    public static func handoff(whole: CoreProblem, first: [String: TensorData], firstFile: String,
                               rest: [String: TensorData], restFile: String, split: Int, arith: DeclaredArithmetic,
                               policy: VerdictPolicy, precision: Int, explain: Bool, name: String,
                               oracles: OracleCache? = nil) throws -> [ReportCase] {
        let w = whole.valueDim, s = whole.sequences
        let o1 = try KernelDump.candidate(first, name: "o", file: firstFile, layout: .bhnd,
                                          expectedCanonicalShape: [whole.batch, whole.heads, split, w])
        let o2 = try KernelDump.candidate(rest, name: "o", file: restFile, layout: .bhnd,
                                          expectedCanonicalShape: [whole.batch, whole.heads, whole.length - split, w])
        let joined = concatenateTokens(o1, o2, sequences: s, width: w)
        let state = try finalState(rest, file: restFile, problem: whole)
        var a = arith
        switch first["final_state"]?.dtype {
        case .float16?: if a.stateStorage == .float32 { a.stateStorage = .float16 }
        case .bfloat16?: a.stateStorage = .bfloat16
        default: break
        }
        let format = DumpFormat.inferred(first["o"]!.dtype)
        let settings = ComparisonSettings(format: format, policy: policy, precision: precision, arithmetic: a,
                                          finalStateFormat: rest["final_state"].map { DumpFormat.inferred($0.dtype) },
                                          explainFailures: explain)
        let handed = DumpFormat.inferred(first["final_state"]?.dtype ?? .float32)
        let baselines = try handoffBaselines(whole: whole, split: split, settings: settings, handedFormat: handed)
        let oracle = try oracles?.output(whole, precision: precision, finalState: state != nil)
        return try KernelComparison.compare(problem: whole, candidate: CandidateTensors(o: joined, finalState: state),
                                            name: name, settings: settings, oracle: oracle, baselines: baselines)
    }

    /// The verdict's baselines for a hand-off: MambaCheck's own kernels in the
    /// declared arithmetic on the whole sequence, and the same kernels doing
    /// the hand-off themselves (every form on the first `N₁` tokens, its final
    /// state rounded once to the format the candidate handed its state in,
    /// then every form on the rest), joined like the candidate. A correct
    /// hand-off has an extra chunk boundary at `N₁` and one more rounding of
    /// the state; these baselines carry exactly that, so the verdict's
    /// allowance is measured on the same computation (Proofs/T12 §2).
    static func handoffBaselines(whole: CoreProblem, split: Int, settings: ComparisonSettings,
                                 handedFormat: NumberFormat) throws -> [CoreOutput] {
        var out = try KernelComparison.baselineOutputs(whole, settings: settings)
        let firsts = try KernelComparison.baselineOutputs(whole.tokens(0..<split), settings: settings)
        let w = whole.valueDim, s = whole.sequences
        for f in firsts {
            guard let st = f.finalState else { continue }
            var rest = whole.tokens(split..<whole.length)
            rest.initialState = CoreState(s: st.s.map { handedFormat.round($0) }, z: st.z?.map { handedFormat.round($0) })
            for r in try KernelComparison.baselineOutputs(rest, settings: settings) {
                out.append(CoreOutput(o: concatenateTokens(f.o, r.o, sequences: s, width: w), finalState: r.finalState))
            }
        }
        return out
    }

    /// The problem with the kernel's returned final state as its initial state.
    public static func withHandedState(_ p: CoreProblem, from outputs: [String: TensorData], file: String) throws -> CoreProblem? {
        guard let f = p.featureDim, outputs["final_state"] != nil else { return nil }
        let s = try KernelDump.candidate(outputs, name: "final_state", file: file, layout: nil,
                                         expectedCanonicalShape: [p.batch, p.heads, f, p.valueDim])
        var z: [Double]? = nil
        if p.spec.normalization == .sum {
            z = try KernelDump.candidate(outputs, name: "final_state_z", file: file, layout: nil,
                                         expectedCanonicalShape: [p.batch, p.heads, f])
        }
        var q = p
        q.initialState = CoreState(s: s, z: z)
        return q
    }

    /// One sequence of a packed batch, judged on its own.
    public struct SequenceVerdict: Sendable {
        /// The sequence's index and its tokens in the packed run.
        public var index: Int
        public var tokens: Range<Int>
        /// The verdicts of its outputs (and gradients) against the oracle of the
        /// sequence alone; empty for an empty sequence.
        public var cases: [ReportCase]
        /// An empty sequence whose returned final state is not its initial state.
        public var emptyFailure: String?
        /// The sequence's slice of the packed outputs (compared bit for bit with the run alone).
        public var outputs: [String: TensorData]
        public var passed: Bool { emptyFailure == nil && cases.allSatisfy(\.passed) }
    }

    /// A packed (`cu_seqlens`) run judged sequence by sequence (Proofs/T12 §4):
    /// the inputs and outputs are split at the offsets (`PackedBatch.split`)
    /// and each non-empty sequence's slice is judged by `verdicts` as a
    /// candidate for that sequence alone — the problem the kernel must have
    /// solved, since nothing crosses a boundary. An empty sequence performs no
    /// arithmetic, so its final state must be its initial state (zero without
    /// one) bit for bit, once stored in the returned dtype (after the declared
    /// state format, `+state=`, for a kernel that keeps its state in 16 bits).
    ///
    /// - Throws: `DumpError` for malformed offsets or shapes that do not fit them.
    public static func packedVerdicts(inputs: [String: TensorData], inputsFile: String, outputs: [String: TensorData],
                                      outputsFile: String, spec: CoreSpec, scale: Double?, arith: DeclaredArithmetic,
                                      policy: VerdictPolicy, precision: Int, explain: Bool, name: String,
                                      oracles: OracleCache? = nil) throws -> [SequenceVerdict] {
        guard let offsets = try PackedBatch.offsets(inputs, file: inputsFile) else {
            throw DumpError.missingArray(file: inputsFile, names: ["cu_seqlens"], purpose: "the offsets of a packed case")
        }
        let ins = try PackedBatch.split(inputs, offsets: offsets, file: inputsFile)
        let outs = try PackedBatch.split(outputs, offsets: offsets, file: outputsFile)
        return try (0..<ins.count).map { s in
            let tokens = offsets[s]..<offsets[s + 1]
            let label = "sequence \(s) (tokens \(tokens.lowerBound)..<\(tokens.upperBound))"
            if tokens.isEmpty {
                return SequenceVerdict(index: s, tokens: tokens, cases: [],
                                       emptyFailure: try emptySequence(ins[s], outs[s], arith: arith, file: outputsFile),
                                       outputs: outs[s])
            }
            let p = try KernelDump.coreProblem(ins[s], file: "\(inputsFile), \(label)", spec: spec, layout: .bhnd,
                                               scale: scale)
            let cases = try verdicts(problem: p, inputs: ins[s], inputsFile: "\(inputsFile), \(label)", outputs: outs[s],
                                     outputsFile: "\(outputsFile), \(label)", arith: arith, policy: policy,
                                     precision: precision, explain: explain, name: "\(name)/seq\(s)", oracles: oracles)
            return SequenceVerdict(index: s, tokens: tokens, cases: cases, emptyFailure: nil, outputs: outs[s])
        }
    }

    /// An empty sequence's returned final state against its initial state
    /// (see `packedVerdicts`); nil when it holds or no final state was returned.
    static func emptySequence(_ inputs: [String: TensorData], _ outputs: [String: TensorData],
                              arith: DeclaredArithmetic, file: String) throws -> String? {
        let held: NumberFormat
        switch arith.stateStorage {
        case .float16: held = .binary16
        case .bfloat16: held = .bfloat16
        case .float32: held = .binary32
        }
        for (out, initial) in [("final_state", "initial_state"), ("final_state_z", "initial_state_z")] {
            guard let f = outputs[out] else { continue }
            let got = try f.asFloat64().storage
            let given = try inputs[initial]?.asFloat64().storage ?? [Double](repeating: 0, count: got.count)
            guard given.count == got.count else {
                return "\(out) has \(got.count) elements, \(initial) \(given.count)"
            }
            let format = DumpFormat.inferred(f.dtype)
            for i in got.indices {
                let exact = format.round(given[i]), viaState = format.round(held.round(given[i]))
                let same = got[i].bitPattern == exact.bitPattern || got[i].bitPattern == viaState.bitPattern
                    || (got[i] == 0 && exact == 0)
                if !same {
                    return "empty sequence: \(out)[flat \(i)] is \(got[i]), expected its \(initial), \(exact) "
                        + "(no token, no arithmetic: the state passes through unchanged)"
                }
            }
        }
        return nil
    }

    /// One line for a list of verdict cases: the failing tensors' reasons, or "pass".
    public static func summary(_ cases: [ReportCase]) -> String {
        let failed = cases.filter { !$0.passed }
        if failed.isEmpty {
            let share = cases.map { Swift.max($0.verdict.margins.max, $0.verdict.rows.worstShare, $0.verdict.normwise.share) }
                .max() ?? 0
            return "\(cases.map(\.tensor).joined(separator: ", ")) within the verdict (largest allowance share "
                + NumberText.significant(share, digits: 3) + ")"
        }
        return failed.map { "\($0.tensor): \($0.verdict.reason)" }.joined(separator: "; ")
    }
}

/// Storage formats from dtypes (as `mambacheck compare` infers them).
public enum DumpFormat {
    public static func inferred(_ dtype: DType) -> NumberFormat {
        switch dtype {
        case .float16: return .binary16
        case .bfloat16: return .bfloat16
        default: return .binary32
        }
    }
}
