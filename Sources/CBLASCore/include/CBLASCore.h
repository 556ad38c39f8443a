// OpenBLAS kernel family chosen from the CPU's features.
//
// Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) picks its kernels once, in a load
// time constructor, from a table of CPU models it knows. On a newer CPU it
// does not know it falls back to Prescott (SSE3) kernels, about 3x slower
// for sgemm than the AVX2/AVX-512 ones the CPU can run. This target fixes
// that in process: a constructor of its own, which runs after OpenBLAS's
// (OpenBLAS is a load-time dependency, initialised first), compares the
// family OpenBLAS chose with the best one the CPUID features allow and, when
// that is better, re-runs OpenBLAS's own dynamic selection with
// OPENBLAS_CORETYPE set. A user-set OPENBLAS_CORETYPE is always respected.
// The choice is checked by a small sgemm against a scalar product; on any
// doubt OpenBLAS's own choice is kept. No BLAS call can precede it, so
// nothing computed with the old kernels survives.
#ifndef MAMBACHECK_CBLASCORE_H
#define MAMBACHECK_CBLASCORE_H

/// CPU features relevant to kernel choice (CPUID, with OS register-state support checked).
typedef struct {
    int avx2_fma;    // AVX2 and FMA3, YMM state enabled by the OS
    int avx512;      // AVX-512 F, CD, BW, DQ, VL, ZMM state enabled by the OS
    int avx512_bf16; // AVX512_BF16 (Cooper Lake, Sapphire Rapids, Zen 4+)
    int avx512_fp16; // AVX512_FP16 (Sapphire Rapids and later)
    int amd;         // vendor AuthenticAMD (or HygonGenuine)
} mc_cpu_features_t;

/// The features of the CPU this process runs on (cached after the first call).
mc_cpu_features_t mc_cpu_features(void);

/// What happened to OpenBLAS's kernel choice in this process.
typedef enum {
    MC_BLAS_CORE_KEPT = 0,       // OpenBLAS's own choice was as good as the CPU allows
    MC_BLAS_CORE_USER = 1,       // OPENBLAS_CORETYPE was set by the user: left alone
    MC_BLAS_CORE_UPGRADED = 2,   // re-selected to a better family
    MC_BLAS_CORE_UNAVAILABLE = 3 // OpenBLAS without runtime selection (not a DYNAMIC_ARCH build)
} mc_blas_core_action_t;

/// Runs the selection once (the constructor calls it; later calls return the same).
mc_blas_core_action_t mc_blas_core_select(void);
/// The family OpenBLAS picked by itself at load time ("" if unknown).
const char *mc_blas_core_detected(void);
/// The family in use now (openblas_get_corename()), "" if unknown.
const char *mc_blas_core_in_use(void);
/// The best family for these features among those Debian's OpenBLAS 0.3.21 ships,
/// or NULL when nothing beats `current`. Pure function of its arguments (tested).
const char *mc_blas_core_better(const char *current, mc_cpu_features_t f);

/// Keeps freed heap blocks below `mmap_threshold` bytes in the heap, and up to
/// `trim_threshold` bytes of free heap top, instead of returning them to the
/// system (glibc `mallopt`). Returns 1 when applied, 0 when not (not glibc, or
/// the user set GLIBC_TUNABLES or MALLOC_MMAP/TRIM_THRESHOLD_ themselves).
/// Process-wide: the command-line tool calls it, the libraries never do.
int mc_keep_freed_buffers(int mmap_threshold, int trim_threshold);
#endif
