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
