import ArgumentParser
import Foundation
import MambaKernels
import MambaPrecision
import MambaTensors
import MambaVariants
import MambaVerification

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Validate an external kernel's outputs against the MPFR oracle.",
        discussion: """
            --inputs holds q, k, v and optionally a (alias g) or a_cumsum (A_cumsum, g_cumsum), initial_state,
            initial_state_z, and do (the upstream gradient dL/dO, same shape as v) when gradients are checked;
            --candidate holds o and optionally final_state, final_state_z, and/or the gradients dq, dk (like q),
            dv (like v), da (alias dg: with respect to the per-step log-decay a, [B,H,N] or [B,N,H]), da_cumsum
            (aliases dA_cumsum, dg_cumsum: with respect to the prefix sums), dinitial_state (alias dh0,
            [B,H,F,dv]), dinitial_state_z ([B,H,F]). Any subset of the gradients may be given (o is then
            optional); they are checked against the MPFR gradient oracle (SPEC §5) with the same verdict, the
            baselines being MambaCheck's own backward kernels (chunked and quadratic) in the candidate's format.
            Values stored as Float16/bfloat16/Float32 are taken as exact.

            Verdict (Proofs/T9-verdict.md): MambaCheck runs its own kernels in the candidate's format on the same
            inputs (chunked and quadratic forms) and measures their error against the oracle. An element passes when
              |candidate − oracle| ≤ factor·max(baseline error, β·magnitude) + ulp-allowance·ulp + bound-factor·u·magnitude
            where magnitude is the oracle's per-element scale Σ|terms| (large for ill-conditioned elements, e.g. a
            sum-normalised row whose normaliser is tiny relative to its terms) and β the baselines' worst
            error/magnitude ratio; the tensor also passes a normwise test of the same form. Defaults: factor 2
            (FlashAttention-3), ulp-allowance 2, bound-factor 8.

            Gradient magnitudes (GradientComparison.magnitudes) are the same idea for each gradient formula: the
            sum of its terms' absolute values, with the normaliser's and δ = O·dO's rounding included.

            Exit codes: 0 pass, 1 verification failure, 2 usage or input error (e.g. gradients without do,
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
    @Option(help: "Axis order: bhnd ([B,H,N,d]) or bnhd ([B,N,H,d]).") var layout: TensorLayout = .bhnd
    @Option(help: "Score scale s (default 1/sqrt(dk)).") var scale: Double?
    @Option(help: "MPFR precision of the oracle (bits).") var precision: Int = 128
    @Option(help: "Write the JSON report here.") var json: String?
    @Option(help: "Write a JUnit XML report here.") var junit: String?
    @Option(help: "Write a Markdown summary here.") var markdown: String?
    @Flag(help: "Keep wall-clock durations in the reports (by default they are 0, so that reports are reproducible byte for byte).")
    var timings = false
    @OptionGroup var policy: PolicyOptions

    func run() throws {
        let (core, _) = try resolveCore(variant)
        let inArrays = try TensorFile.read(inputs)
        let problem = try KernelDump.coreProblem(inArrays, file: inputs, spec: core, layout: layout, scale: scale)
        if let m = problem.validationError() { throw InputProblem(description: "\(inputs): \(m)") }
        let outArrays = try TensorFile.read(candidate)
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
        let settings = ComparisonSettings(format: fmt, policy: try policy.verdictPolicy(), precision: precision)
        let name = "\(variant)/candidate/\(fmt.rawValue)"
        var cases: [ReportCase] = []
        if let o {
            cases += try KernelComparison.compare(problem: problem, candidate: CandidateTensors(o: o, finalState: state),
                                                  name: name, settings: settings)
        }
        if let gradients, let gradientProblem {
            do {
                cases += try GradientComparison.compare(problem: gradientProblem, candidate: gradients, name: name,
                                                        settings: settings)
            } catch let e as GradientComparisonError {
                throw InputProblem(description: "\(candidate): \(e)")
            }
        }
        let report = VerificationReport(toolVersion: MambaCheckVersion.string,
                                        command: "mambacheck compare --variant \(variant) --format \(fmt.rawValue)",
                                        seed: 0, cases: cases)
        printDetails(report)
        try writeReports(timings ? report : report.withoutTimings, json: json, junit: junit, markdown: markdown)
        if !report.passed {
            throw VerificationFailed(description: "FAIL: " + report.failedCases.map { "\($0.tensor): \($0.verdict.reason)" }.joined(separator: "; "))
        }
        print("PASS")
    }

    func printDetails(_ report: VerificationReport) {
        print(TablePrinter.render(report), terminator: "")
        for c in report.cases {
            let m = c.metrics
            print("\n[\(c.tensor)] max abs \(sci(m.maxAbsoluteError))  max rel \(sci(m.maxRelativeError))  median rel \(sci(m.medianRelativeError))  ulp p50/p99/max \(sci(m.ulpP50))/\(sci(m.ulpP99))/\(sci(m.ulpMax))  normwise \(sci(m.normwiseRelativeError))  rms ratio \(sci(m.rmsRatio))")
            print("  verdict: \(c.verdict.passed ? "pass" : "FAIL") — \(c.verdict.reason)")
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
