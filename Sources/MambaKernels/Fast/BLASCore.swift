import CBLASCore
import COpenBLAS

/// Which OpenBLAS kernel family this process uses, and why.
///
/// OpenBLAS (Debian's 0.3.21, built with DYNAMIC_ARCH) picks its kernels at
/// load time from the CPU models it knows and falls back to Prescott (SSE3)
/// kernels on newer ones. The `CBLASCore` target's load-time constructor
/// compares that choice with the best family the CPUID features allow
/// (AVX-512 with BF16 → Cooperlake, AVX-512 → SkylakeX, AVX2+FMA → Haswell,
/// or Zen on AMD) and re-runs OpenBLAS's own selection with the better one
/// before any BLAS call, checking it with an exact small-integer sgemm. This
/// happens in every process that links `MambaKernels`: the CLI, the test
/// runner and any program using the library — no re-execution needed. An
/// `OPENBLAS_CORETYPE` set by the user is respected;
/// `MAMBACHECK_KEEP_OPENBLAS_CORE=1` keeps OpenBLAS's own choice.
///
/// Threads: OpenBLAS's default (one per core) is kept for all work except
/// `bench`, which pins one thread unless told otherwise so that the kernel
/// and its sgemm roof are measured alike.
public enum BLASCore {
    /// What the constructor did.
    public enum Action: String, Sendable {
        case kept = "OpenBLAS's own choice"
        case user = "OPENBLAS_CORETYPE"
        case upgraded = "chosen by MambaCheck from CPUID"
        case unavailable = "OpenBLAS without runtime kernel selection"
    }

    public static var action: Action {
        switch mc_blas_core_select() {
        case MC_BLAS_CORE_USER: return .user
        case MC_BLAS_CORE_UPGRADED: return .upgraded
        case MC_BLAS_CORE_UNAVAILABLE: return .unavailable
        default: return .kept
        }
    }

    /// The family in use now (`openblas_get_corename()`).
    public static var inUse: String { String(cString: mc_blas_core_in_use()) }

    /// The family OpenBLAS picked by itself at load time.
    public static var detected: String { String(cString: mc_blas_core_detected()) }

    /// OpenBLAS's current thread count.
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// A better family than `current` for CPUs with these features, or nil
    /// (the pure rule the constructor applies).
    public static func better(than current: String, avx2: Bool, avx512: Bool, avx512BF16: Bool,
                              amd: Bool) -> String? {
        let f = mc_cpu_features_t(avx2_fma: avx2 ? 1 : 0, avx512: avx512 ? 1 : 0, avx512_bf16: avx512BF16 ? 1 : 0,
                                  avx512_fp16: 0, amd: amd ? 1 : 0)
        return mc_blas_core_better(current, f).map { String(cString: $0) }
    }

    /// This CPU's features as the rule sees them.
    public static var cpu: (avx2: Bool, avx512: Bool, avx512BF16: Bool, avx512FP16: Bool, amd: Bool) {
        let f = mc_cpu_features()
        return (f.avx2_fma != 0, f.avx512 != 0, f.avx512_bf16 != 0, f.avx512_fp16 != 0, f.amd != 0)
    }

    /// One line for `bench` and `verify`, e.g.
    /// `BLAS: OpenBLAS core Haswell (chosen by MambaCheck from CPUID; OpenBLAS detected Prescott), 2 threads`;
    /// `threads` defaults to OpenBLAS's current count.
    public static func summary(threads: Int? = nil) -> String {
        let a = action, t = threads ?? self.threads
        var why = a.rawValue
        if a == .upgraded { why += "; OpenBLAS detected \(detected)" }
        return "BLAS: OpenBLAS core \(inUse) (\(why)), \(t) thread\(t == 1 ? "" : "s")"
    }
}
