import ArgumentParser
import Foundation
import MambaOracle
import MambaPrecision
import MambaTensors
import MambaVariants
import MambaVerification

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Validate an external kernel's outputs against the MPFR oracle.",
        discussion: """
            --inputs holds q, k, v and optionally a (alias g) or a_cumsum (A_cumsum, g_cumsum), initial_state, \
            initial_state_z, and do (the upstream gradient dL/dO, same shape as v) when gradients are checked; \
            --candidate holds o and optionally final_state, final_state_z, and/or the gradients dq, dk (like q), \
            dv (like v), da (alias dg: with respect to the per-step log-decay a, [B,H,N] or [B,N,H]), da_cumsum \
            (aliases dA_cumsum, dg_cumsum: with respect to the prefix sums), dinitial_state (alias dh0, \
            [B,H,F,dv]), dinitial_state_z ([B,H,F]). Any subset of the gradients may be given (o is then \
            optional); they are checked against the MPFR gradient oracle (docs/MATH.md §5) with the same verdict, the \
            baselines being MambaCheck's own backward kernels (chunked and quadratic) in the candidate's format. \
            Values stored as Float16/bfloat16/Float32 are taken as exact.

            Declared arithmetic (--arith, docs/MATH.md §8): what your kernel computes in. Profiles: float32 (fp32: \
            true Float32 dots), float32-3xtf32 (3xtf32: Float32 data, each product as three TF32 products of split \
            operands — CUTLASS's OpMultiplyAddFastF32, PyTorch's memory-efficient SDPA on fp32), tf32 (fp32-tf32: Float32 data, TF32 dot products — Triton's default tl.dot on fp32), \
            float16-acc32 (fp16: fp16 operands, fp32 accumulation — tensor cores), bfloat16-acc32 (bf16), \
            float16-pure (pure-fp16: every operation in half). Suffixes: +state=float16|bfloat16 (the carried state \
            is stored in 16 bits between chunks/tokens), +chunk=C (the kernel's chunk length, default 64; e.g. 256 \
            for Mamba-2's SSD kernels; undeclared, in true Float32 a length of 128 or 256 is inferred when rows \
            deep in such chunks err several times more than the rest, and the report says so), \
            +form=chunked|quadratic|tiled|recurrent (the kernel's form: only that form's baselines are \
            yardsticks, a tighter verdict; without it every form's legitimate error is \
            allowed: under strong decays chunk-local prefix sums err by u·|ℓ|, up to ~9x a token-by-token \
            recurrence; undeclared, in true Float32 the recurrent form is inferred for the outputs when 90% of \
            rows are as accurate as a Float32 recurrence and errors do not grow where prefix sums err more, and \
            the report says so). In Float32 every error is judged modulo a coherent exponential bias (a GPU exp biased \
            alike every token, compounded by a recurrence; up to 2 x 2^-25 per step removed, reported in the JSON \
            as removedExponentialBias). Default: from o's dtype (float32 → float32, \
            float16 → float16-acc32, bfloat16 → bfloat16-acc32). The storage format of each tensor always comes \
            from its dtype.

            Verdict (Proofs/T9-verdict.md): MambaCheck runs its own kernels in your declared arithmetic on the same \
            inputs (chunked at your chunk length, and quadratic; other prefix-sum orders; a recurrent one with a \
            biased exponential unless the form is declared otherwise; a base-2 exponent variant when you pass \
            prefix sums) and measures their error against the MPFR oracle. Three tests must pass:
              element: |err_e| ≤ factor·β·s_e + ulp-allowance·ulp(y_e)   (β: baselines' worst err/s; s_e: error scale)
              row:     ‖err‖_row ≤ row-factor·R_row + ‖ulp‖_row/√12       (R: baselines' pooled row error, Proofs/T9)
              norm:    ‖err‖₂ ≤ norm-factor·max‖baseline err‖₂ + ‖ulp‖₂/√12
            Opt-in (--replica-row-factor θ, e.g. 2): where one baseline reproduces the kernel (it leaves under a fifth \
            of its error unexplained), each row's departure from it must also stay within θ..row-factor row yardsticks. \
            Defaults: factor 2.5 (FlashAttention-3's 2, per element), row-factor 3.5, norm-factor 2, ulp-allowance 1, bound-factor 0, replica test off. \
            The report gives the share of each allowance used, the worst elements by |err|/allowance and the \
            detection floor (the smallest uniform and single-row relative error that would have failed). A \
            failure that a looser arithmetic would explain is named ("consistent with TF32 dot products"); the \
            verdict itself never loosens. An undefined oracle (zero denominator) is never a pass: exit 2.

            Gradient magnitudes (GradientComparison.magnitudes) are the same idea for each gradient formula: the \
            sum of its terms' absolute values, with the normaliser's and δ = O·dO's rounding included.

            Exit codes: 0 pass, 1 verification failure, 2 usage or input error (e.g. gradients without do, \
            a wrong shape, da for a core without decay).

            Examples:
              mambacheck compare --variant 2mamba --inputs in.npz --candidate out.npz
              mambacheck compare --variant 2mamba --inputs in_with_do.npz --candidate grads.npz   # dq, dk, dv, dg
              mambacheck compare --variant squared-decay-sum --inputs in.safetensors --candidate out.safetensors \\
                  --layout bnhd --format float16 --json report.json --junit report.xml --markdown summary.md
            """)

    @Option(help: "Preset or core name (see `mambacheck variants`).") var variant: String
    @Option(help: "Input tensors (.npz or .safetensors).") var inputs: String
    @Option(help: "Candidate outputs (.npz or .safetensors).") var candidate: String
    @Option(help: "Candidate's format: float32, float16, bfloat16 or tf32 (default: from o's dtype).")
    var format: CandidateFormat?
    @Option(help: "Declared arithmetic: float32, float32-3xtf32, tf32, float16-acc32, bfloat16-acc32, float16-pure, with optional +state=float16|bfloat16, +chunk=C and +form=chunked|quadratic|tiled|recurrent (default: from o's dtype).")
    var arith: String?
    @Option(help: "Axis order: bhnd ([B,H,N,d]) or bnhd ([B,N,H,d]).") var layout: TensorLayout = .bhnd
    @OptionGroup var scaleOptions: ScaleOptions
    @Option(help: "MPFR precision of the oracle (bits).") var precision: Int = 128
    @OptionGroup var reports: ReportOptions
    @OptionGroup var policy: PolicyOptions

    /// Oracle arguments checked before anything is read (exit 2): see `OracleArguments`.
    func validate() throws { try OracleArguments.validate(precision: precision, scale: nil) }

    func run() throws {
        // Never write over an input, and fail on an unwritable report path before computing.
        try OutputPaths.check(reports.outputs,
                              inputs: [("--inputs", inputs), ("--candidate", candidate)])
        let (core, inArrays, problem) = try readDumpProblem(variant: variant, inputs: inputs, layout: layout,
                                                            scaleOptions: scaleOptions)
        var outArrays = try TensorFile.read(candidate)
        // A single-array .npy candidate is the output o, whatever the file is called.
        if TensorFileFormat(pathExtensionOf: candidate) == .npy, outArrays.count == 1, outArrays["o"] == nil,
           let only = outArrays.first {
            outArrays = ["o": only.value]
            printError("note: \(candidate) holds one array (\(only.key)); it is judged as the output o")
        }
        let gradientPresent = KernelDump.gradientNames.joined().contains { outArrays[$0] != nil }
        let hasOutput = outArrays["o"] != nil || !gradientPresent
        let oShape = [problem.batch, problem.heads, problem.length, problem.valueDim]
        var o: [Double]? = nil
        if hasOutput {
            o = try KernelDump.candidate(outArrays, name: "o", file: candidate, layout: layout, expectedCanonicalShape: oShape)
        }
        var state: CoreState? = nil
        if outArrays["final_state"] != nil {
            guard let f = problem.featureDim else {
                throw InputProblem(description: "\(candidate): final_state given, but the \(core.name) core has no finite state")
            }
            guard o != nil else {
                throw DumpError.missingArray(file: candidate, names: ["o"], purpose: "final_state is judged together with the output o")
            }
            let s = try KernelDump.candidate(outArrays, name: "final_state", file: candidate, layout: nil,
                                             expectedCanonicalShape: [problem.batch, problem.heads, f, problem.valueDim])
            var z: [Double]? = nil
            if outArrays["final_state_z"] != nil {
                z = try KernelDump.candidate(outArrays, name: "final_state_z", file: candidate, layout: nil,
                                             expectedCanonicalShape: [problem.batch, problem.heads, f])
            }
            state = CoreState(s: s, z: z)
        }
        var gradients: CandidateGradients? = nil
        var gradientProblem: GradientProblem? = nil
        if gradientPresent {
            gradientProblem = try KernelDump.gradientProblem(inArrays, file: inputs, core: problem, layout: layout)
            gradients = try KernelDump.candidateGradients(outArrays, file: candidate, core: problem, layout: layout)
        }
        let dtypeSource = outArrays["o"] ?? KernelDump.gradientNames.joined().compactMap { outArrays[$0] }.first!
        let fmt = format?.numberFormat ?? CandidateFormat.inferred(from: dtypeSource.dtype)
        if format == nil, dtypeSource.dtype == .float64 {
            printError("note: \(candidate) stores float64; it is judged as a binary32 kernel's output "
                       + "(pass --format or --arith to declare another)")
        }
        var declared: DeclaredArithmetic? = nil
        if let arith {
            guard let a = DeclaredArithmetic.named(arith), (try? a.mode()) != nil else {
                throw ValidationError("--arith \(arith): expected one of "
                    + DeclaredArithmetic.profiles.map(\.name).joined(separator: ", ")
                    + ", optionally with +state=float16|bfloat16 and +chunk=C")
            }
            declared = a
        }
        let stateFormat = outArrays["final_state"].map { CandidateFormat.inferred(from: $0.dtype) }
        var settings = ComparisonSettings(format: fmt, policy: try policy.verdictPolicy(), precision: precision,
                                          arithmetic: declared, finalStateFormat: format == nil ? stateFormat : fmt,
                                          explainFailures: true)
        // Each gradient in the format its dump stores it in (FLA returns Float32 dg and dh0
        // beside bf16 dq), unless --format says otherwise.
        if format == nil {
            for names in KernelDump.gradientNames {
                guard let array = names.lazy.compactMap({ outArrays[$0] }).first else { continue }
                let f = CandidateFormat.inferred(from: array.dtype)
                if f != fmt { settings.gradientFormats[names[0]] = f }
            }
        }
        let arithName = settings.effectiveArithmetic.name
        let name = "\(variant)/candidate/\(fmt.rawValue)" + (declared == nil ? "" : "+\(arithName)")
        var cases: [ReportCase] = []
        var oracleStatement: String? = nil, gradientStatement: String? = nil
        var chunkNote: String? = nil, inferredChunk: Int? = nil, inferredForm: String? = nil, formNote: String? = nil
        let progress = ProgressTicker(label: "compare", stage: "oracle and baselines for o")
        defer { progress.finish() }
        if let o {
            // Verdicts use certified oracle values (Proofs/T7); the report says so.
            let oracle = try ComparisonOracle(problem: problem, precision: precision, finalState: state != nil)
            // The inferences below and the verdict run the same kernels: each runs once.
            let runs = BaselineRuns()
            oracleStatement = oracle.statement
            // An undeclared chunk length is read from the candidate's error pattern
            // (true Float32 only; `ChunkLengthInference`); `+chunk=` always wins.
            if arith?.contains("+chunk=") != true,
               let inferred = ChunkLengthInference.infer(problem, candidate: o, oracle: oracle.reference.oDouble,
                                                         arithmetic: settings.effectiveArithmetic, runs: runs) {
                var a = settings.effectiveArithmetic
                a.chunkSize = inferred.chunkSize
                settings.arithmetic = a
                chunkNote = inferred.note
                inferredChunk = inferred.chunkSize
            } else if let inferred = RecurrentFormInference.infer(problem, candidate: o, oracle: oracle.reference.oDouble,
                                                                  settings: settings, runs: runs), inferred.recurrent {
                // Likewise an undeclared recurrent form (`RecurrentFormInference`); `+form=` always wins.
                var a = settings.effectiveArithmetic
                a.form = .recurrent
                settings.arithmetic = a
                formNote = inferred.note
                inferredForm = "recurrent"
            }
            cases += try KernelComparison.compare(problem: problem, candidate: CandidateTensors(o: o, finalState: state),
                                                  name: name, settings: settings, oracle: oracle.reference, runs: runs)
        }
        let forwardCount = cases.count
        if let gradients, let gradientProblem {
            progress.set(stage: "oracle and baselines for the gradients")
            // Verdicts use certified gradients (Proofs/T7); the report says which elements are certified.
            let (certified, zeroRows) = try Reference.certifiedGradients(gradientProblem, precision: precision,
                                                                         maxPrecision: Swift.max(4096, precision))
            gradientStatement = certified.summary
            let gradientOracle = certified.referenceGradients(zeroDenominatorRows: zeroRows)
            // The gradients keep the declared form: a recurrent forward may pair with a
            // chunked backward (`RecurrentFormInference` reads outputs only).
            var gradientSettings = settings
            if inferredForm != nil { gradientSettings.arithmetic?.form = nil }
            do {
                cases += try GradientComparison.compare(problem: gradientProblem, candidate: gradients, name: name,
                                                        settings: gradientSettings, oracle: gradientOracle)
            } catch let e as GradientComparisonError {
                throw InputProblem(description: "\(candidate): \(e)")
            }
        }
        progress.finish()
        if let chunkNote {
            for i in cases.indices { cases[i].verdict.prependNote(chunkNote) }
        }
        if let formNote {
            for i in 0..<forwardCount { cases[i].verdict.prependNote(formNote) }
        }
        var report = VerificationReport(toolVersion: MambaCheckVersion.string,
                                        command: commandLine(format: fmt, arith: declared.map { _ in arithName }),
                                        seed: 0, cases: cases)
        report.inferredChunkLength = inferredChunk
        report.inferredForm = inferredForm
        report.oracle = [oracleStatement ?? (gradientStatement != nil ? "scale \(problem.scaleSpec)" : nil), gradientStatement]
            .compactMap { $0 }.joined(separator: "; ")
        if report.oracle?.isEmpty == true { report.oracle = nil }
        printDetails(report)
        try reports.write(report)
        if !report.passed {
            let detail = report.failedCases.map { "\($0.tensor): \($0.verdict.reason)" }.joined(separator: "; ")
            if report.failedCases.allSatisfy({ $0.verdict.isUndefined && $0.verdict.failingCount == 0 }) {
                throw InputProblem(description: "\(inputs): the oracle is undefined for these inputs (\(detail))")
            }
            throw VerificationFailed(description: detail)
        }
        print("PASS")
    }

    /// The command that reruns this check (reported in JSON/JUnit/Markdown).
    func commandLine(format fmt: NumberFormat, arith: String?) -> String {
        var c = "mambacheck compare --variant \(variant) --inputs \(inputs) --candidate \(candidate)"
            + " --layout \(layout.rawValue) --format \(CandidateFormat(fmt).rawValue)"
        if let arith { c += " --arith \(arith)" }
        c += scaleOptions.commandLineArguments
        if precision != 128 { c += " --precision \(precision)" }
        return c
    }

    func printDetails(_ report: VerificationReport) {
        if let oracle = report.oracle { print("oracle: \(oracle)") }
        print(TablePrinter.render(report), terminator: "")
        for c in report.cases {
            let m = c.metrics
            print("\n[\(c.tensor)] max abs \(sci(m.maxAbsoluteError))  max rel \(sci(m.maxRelativeError))  median rel \(sci(m.medianRelativeError))  ulp p50/p99/max \(sci(m.ulpP50))/\(sci(m.ulpP99))/\(sci(m.ulpMax))  normwise \(sci(m.normwiseRelativeError))  rms ratio \(sci(m.rmsRatio))")
            let v = c.verdict
            print("  verdict: \(v.passed ? "pass" : (v.isUndefined ? "UNDEFINED" : "FAIL")) — \(v.reason)")
            if v.baselineCount > 0 {
                print("  allowance used: elements p50/p99/max \(sci(v.margins.p50))/\(sci(v.margins.p99))/\(sci(v.margins.max))"
                      + " (baseline term dominates \(Int((v.margins.baselineTermShare * 100).rounded()))%), rows max \(sci(v.rows.worstShare)), norm \(sci(v.normwise.share))")
                print("  detection floor: uniform relative error \(sci(v.detectionFloor.uniform)), one row \(sci(v.detectionFloor.singleRowMedian)) (median row)"
                      + "; baselines' own relative error \(sci(v.detectionFloor.baselineRelativeError))")
            }
            if !v.worstElements.isEmpty {
                print("  worst elements by |err|/allowance:")
                for w in v.worstElements {
                    print("    \(w.index): |err| \(sci(w.absoluteError)) / allowed \(sci(w.allowance)) = \(sci(w.ratio))\(w.failure == nil ? "" : " FAIL")")
                }
            }
            if !m.worst.isEmpty {
                print("  worst elements (index [b, h, n, d] for o, whatever --layout; candidate vs oracle, |err|, ulps, condition):")
                for w in m.worst.prefix(5) {
                    print("    \(w.index): \(w.candidate) vs \(w.oracle), \(sci(w.absoluteError)), \(sci(w.ulpError)), \(w.condition.map(sci) ?? "-")")
                }
            }
        }
    }

    func sci(_ x: Double) -> String { x.isFinite ? String(format: "%.3g", x) : "\(x)" }
}

enum CandidateFormat: String, ExpressibleByArgument, CaseIterable {
    case float32, float16, bfloat16, tf32

    /// Accepts the names used in reports and elsewhere too (binary32, fp16, half, bf16, …).
    init?(argument: String) {
        switch argument.lowercased() {
        case "float32", "binary32", "fp32", "f32": self = .float32
        case "float16", "binary16", "fp16", "f16", "half": self = .float16
        case "bfloat16", "bf16": self = .bfloat16
        case "tf32": self = .tf32
        default: return nil
        }
    }

    init(_ f: NumberFormat) {
        switch f {
        case .binary16: self = .float16
        case .bfloat16: self = .bfloat16
        case .tf32: self = .tf32
        default: self = .float32
        }
    }
    var numberFormat: NumberFormat {
        switch self {
        case .float32: return .binary32
        case .float16: return .binary16
        case .bfloat16: return .bfloat16
        case .tf32: return .tf32
        }
    }
    static func inferred(from dtype: DType) -> NumberFormat {
        switch dtype {
        case .float16: return .binary16
        case .bfloat16: return .bfloat16
        default: return .binary32
        }
    }
}
