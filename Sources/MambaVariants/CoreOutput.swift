/// The result of running a core: `o` (`[B, H, N, dv]`) and, for cores with a
/// finite state, the final state in FLA's convention (docs/MATH.md §3), both as the
/// exact values the kernel produced (Float16/Float32 values held in Double).
public struct CoreOutput: Sendable {
    public var o: [Double]
    public var finalState: CoreState?
    /// What the kernel observed and did about it (overflow, clamped
    /// denominators, …); empty when nothing happened.
    public var diagnostics: [String]

    public init(o: [Double], finalState: CoreState?, diagnostics: [String] = []) {
        self.o = o
        self.finalState = finalState
        self.diagnostics = diagnostics
    }
}

/// The forms of docs/MATH.md §3; they compute one thing.
public enum KernelForm: String, CaseIterable, Sendable, Codable {
    /// Masked `N × N` matrix, `O(N²)`.
    case quadratic
    /// SSD: chunk-local prefix sums, intra-chunk quadratic, GEMM state carry.
    case chunked
    /// One token at a time with a state (KV cache for the exponential score).
    case recurrent
    /// Key blocks with online normalisation (flash style); sum-normalised cores.
    case tiled
}

/// Precision modes of the optimized kernels (docs/MATH.md §7).
public enum PrecisionMode: String, CaseIterable, Sendable, Codable {
    /// Float32 inputs, arithmetic and outputs.
    case float32
    /// Tensor-core style: inputs rounded to binary16, products and sums in
    /// Float32, output rounded to binary16.
    case float16Acc32 = "float16-acc32"
    /// Every operation rounded to binary16.
    case float16
    /// Inputs rounded to bfloat16, Float32 arithmetic, output rounded to bfloat16.
    case bfloat16Acc32 = "bfloat16-acc32"
    /// Dot-product inputs rounded to TF32 (11 bits), Float32 accumulation and output.
    case tf32
}
