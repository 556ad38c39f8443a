import MambaKernels
import MambaVariants

/// MambaCheck's kernel runs on one problem, kept so that the inferences of an
/// undeclared chunk length or form and the baselines of the verdict that follows
/// run each kernel once (`compare` at N = 4096 ran the chunked and recurrent
/// forms twice: once to read the candidate's form, once as yardsticks).
///
/// A run is a pure function of the problem, the form, the precision mode and the
/// options, so a kept output is the one a fresh run returns. Every call on one
/// instance must pass the same base problem; `variant` names the derived problem
/// (biased exponentials, base-2 prefix sums, a pre-scaled query or q and k), each a pure
/// function of the base one. Not thread-safe: the callers run baselines in turn.
public final class BaselineRuns {
    /// Which problem a run is on, relative to the base problem.
    enum Variant: Hashable {
        case base, exponentialBias, base2PrefixSums, prescaledQuery, splitScale
    }

    private struct Key: Hashable {
        var variant: Variant
        var form: KernelForm
        var mode: PrecisionMode
        var options: KernelOptions
    }

    private var kept: [Key: CoreOutput] = [:]

    public init() {}

    /// `CoreKernels.run(problem, form:mode:options:)`, once per key; failures are not kept.
    func run(_ problem: CoreProblem, _ variant: Variant, form: KernelForm, mode: PrecisionMode,
             options: KernelOptions) throws -> CoreOutput {
        let key = Key(variant: variant, form: form, mode: mode, options: options)
        if let r = kept[key] { return r }
        let r = try CoreKernels.run(problem, form: form, mode: mode, options: options)
        kept[key] = r
        return r
    }
}

extension Optional where Wrapped == BaselineRuns {
    /// The kept run where there is a `BaselineRuns`, else a fresh one.
    func run(_ problem: CoreProblem, _ variant: BaselineRuns.Variant, form: KernelForm, mode: PrecisionMode,
             options: KernelOptions) throws -> CoreOutput {
        if let runs = self { return try runs.run(problem, variant, form: form, mode: mode, options: options) }
        return try CoreKernels.run(problem, form: form, mode: mode, options: options)
    }
}
