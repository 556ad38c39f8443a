import MambaKernels
import MambaPrecision
import MambaVariants

/// A kernel whose forward pass MambaCheck's properties and oracle can check.
///
/// Conform your own kernel (a Swift wrapper around a CPU kernel, or a bridge
/// that runs a GPU kernel and reads its outputs back) and call
/// `PropertySuite.run(_:)` from a test: every property of Proofs/ is checked on
/// seeded cases, each failure reports the seed that replays it.
///
/// Contract of `forward`: inputs and outputs follow docs/MATH.md §1/§3 in the
/// canonical `[B, H, N, d]` layout (`CoreProblem`, `CoreOutput`); decays may
/// arrive as per-step `a` or as prefix sums; the final state follows FLA's
/// convention and may be nil when the kernel does not return it.
public protocol KernelUnderTest: Sendable {
    /// A name for reports.
    var name: String { get }
    /// The core the kernel implements.
    var core: CoreSpec { get }
    /// The forms it provides (at least one).
    var forms: [KernelForm] { get }
    /// The storage format of its outputs.
    var format: NumberFormat { get }
    /// The built-in precision mode that models its arithmetic (baselines and
    /// the accumulation precision of the verdict; e.g. `.float16Acc32` for a
    /// tensor-core kernel with binary16 inputs and outputs).
    var mode: PrecisionMode { get }
    /// Whether `forward` accepts and returns states (default true for cores
    /// with a finite state).
    var supportsState: Bool { get }
    func forward(_ problem: CoreProblem, form: KernelForm) throws -> CoreOutput
}

extension KernelUnderTest {
    public var supportsState: Bool { core.score.hasFeatureMap }
}

/// MambaCheck's own optimized kernels, tested through the same protocol.
public struct BuiltinKernel: KernelUnderTest {
    public var core: CoreSpec
    public var mode: PrecisionMode
    public var options: KernelOptions

    public init(core: CoreSpec, mode: PrecisionMode, options: KernelOptions = KernelOptions(chunkSize: 16, tileSize: 16)) {
        self.core = core
        self.mode = mode
        self.options = options
    }

    public var name: String { "builtin:\(core.name)/\(mode.rawValue)" }
    public var forms: [KernelForm] {
        core.normalization == .sum ? KernelForm.allCases : [.quadratic, .chunked, .recurrent]
    }
    public var format: NumberFormat { KernelComparison.format(for: mode) }

    public func forward(_ problem: CoreProblem, form: KernelForm) throws -> CoreOutput {
        try CoreKernels.run(problem, form: form, mode: mode, options: options)
    }
}
