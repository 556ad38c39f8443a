// Exact binary16 matrix product, emulated or native (see CHalf.h).
//
// Every product a·b of two binary16 values is exact in binary32 (11 + 11 ≤ 24
// bits), and a binary32 sum of two binary16 values rounded to binary16 is the
// correctly rounded binary16 sum (24 ≥ 2·11 + 2: double rounding is
// innocuous). So "binary32 op, then round to binary16" *is* binary16
// arithmetic, and all paths below give the same bits (NaN payloads aside).
// No fused multiply-add anywhere: contraction is off for this file.
#pragma STDC FP_CONTRACT OFF
#include "CHalf.h"
#include <stdlib.h>
#include <string.h>
#include <math.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <cpuid.h>
#define MC_X86 1
#endif

static inline float mc_r16(float x) { return mc_half_bits_to_float_scalar(mc_float_to_half_bits_scalar(x)); }

#ifdef MC_X86
/// 1 when no product or partial sum of any output can exceed 65504 in
/// magnitude (so none overflows binary16), else 0 (also for non-finite
/// inputs: the comparisons fail on NaN). With u = 2^-11, a product rounds to
/// at most |a·b|(1 + u) + 2^-25 (the subnormal quantum's half) and a sum to
/// at most (|s| + |r|)(1 + u), so every partial sum of row i is at most
/// (1 + u)^(k+1)·(Σ_p |a_ip|·max|b| + k·2^-25); exp((k+1)·u) bounds the
/// power from above, and the margin covers the double evaluation.
__attribute__((target("avx"))) static int mc_half_sums_bounded(const float *a, const float *b, size_t m, size_t n, size_t k) {
    // Vectorised (8 lanes): a sequential NaN-sticky maximum cost as much as
    // the product itself on the query-side shapes. The maximum of a set does
    // not depend on the order; a NaN anywhere fails the check, as before.
    const __m256 absMask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 mx = _mm256_setzero_ps(), unordered = _mm256_setzero_ps();
    size_t e = 0;
    for (; e + 8 <= k * n; e += 8) {
        __m256 v = _mm256_and_ps(_mm256_loadu_ps(b + e), absMask);
        unordered = _mm256_or_ps(unordered, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        mx = _mm256_max_ps(mx, v);
    }
    if (_mm256_movemask_ps(unordered)) return 0;
    float lanes[8];
    _mm256_storeu_ps(lanes, mx);
    double bmax = 0;
    for (int l = 0; l < 8; l++) if (lanes[l] > bmax) bmax = lanes[l];
    for (; e < k * n; e++) {
        double v = fabs((double)b[e]);
        if (!(v <= bmax)) bmax = v; // NaN sticks
    }
    double growth = exp((double)(k + 1) * 0x1p-11) * (1 + 0x1p-30), tiny = (double)k * 0x1p-25;
    for (size_t i = 0; i < m; i++) {
        // Σ_p |a_ip| in binary64, four lanes per half (each term exact, the
        // sum's relative error ~k·2^-53, inside the 2^-30 margin).
        const float *row = a + i * k;
        __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
        size_t p = 0;
        for (; p + 8 <= k; p += 8) {
            __m256 v = _mm256_and_ps(_mm256_loadu_ps(row + p), absMask);
            s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
            s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
        }
        double part[4];
        _mm256_storeu_pd(part, _mm256_add_pd(s0, s1));
        double sa = (part[0] + part[1]) + (part[2] + part[3]);
        for (; p < k; p++) sa += fabs((double)row[p]);
        if (!(growth * (sa * bmax + tiny) < 65504.0)) return 0;
    }
    return 1;
}
#endif

/// Scalar reference: the same operation order as every vector path.
static void mc_half_gemm_scalar(const float *a, const float *b, float *acc, size_t m, size_t n, size_t k) {
    for (size_t i = 0; i < m; i++) {
        float *row = acc + i * n;
        for (size_t j = 0; j < n; j++) row[j] = 0.0f;
        for (size_t p = 0; p < k; p++) {
            float av = a[i * k + p];
            const float *brow = b + p * n;
            for (size_t j = 0; j < n; j++) row[j] = mc_r16(row[j] + mc_r16(av * brow[j]));
        }
    }
}

#ifdef MC_X86
// ---- F16C (AVX): 8 lanes, rounding by a VCVTPS2PH/VCVTPH2PS round trip ----
#define MC_ROWS MC_HALF_GEMM_ROWS
__attribute__((target("avx,f16c"))) static inline __m256 mc_r16_f16c(__m256 x) {
    return _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
// A running sum rounded by Veltkamp splitting, g = 8193·t, g + (t − g): three
// binary32 operations instead of two conversions, which cost more on CPUs
// like this project's AMD EPYC. It is RN to 11 bits (ties to even; checked
// exhaustively over every binary32 of magnitude 2^-24 … 2^16), which is the
// binary16 rounding of t = s + r unless the result overflows binary16: a sum
// of two binary16 values below 2^-14 is exact (at most 10 bits, unchanged).
// Used only when mc_half_sums_bounded rules overflow out.
__attribute__((target("avx,f16c"))) static inline __m256 mc_r16_sum_split(__m256 t) {
    __m256 g = _mm256_mul_ps(t, _mm256_set1_ps(8193.0f));
    return _mm256_add_ps(g, _mm256_sub_ps(t, g));
}
// One tile step: c ← h(c + h(a·b)); products always through F16C (their
// rounding must handle binary16 subnormals), sums by split when `split`.
#define MC_F16C_STEP(c, av, bv, split) \
    (split ? mc_r16_sum_split(_mm256_add_ps(c, mc_r16_f16c(_mm256_mul_ps(av, bv)))) \
           : mc_r16_f16c(_mm256_add_ps(c, mc_r16_f16c(_mm256_mul_ps(av, bv)))))

// The last 8 columns (n % 16 == 8) of rows i … i + MC_ROWS − 1 on YMM; shared by
// the F16C and AVX-512F paths.
__attribute__((target("avx,f16c"), always_inline))
static inline void mc_half_tile8_f16c(const float *a, const float *b, float *acc, size_t i, size_t n, size_t k,
                                      const int split) {
    size_t j = n - 8;
    __m256 c[MC_ROWS];
    for (int r = 0; r < MC_ROWS; r++) c[r] = _mm256_setzero_ps();
    for (size_t p = 0; p < k; p++) {
        __m256 b0 = _mm256_loadu_ps(b + p * n + j);
        for (int r = 0; r < MC_ROWS; r++) {
            __m256 av = _mm256_broadcast_ss(a + (i + r) * k + p);
            c[r] = MC_F16C_STEP(c[r], av, b0, split);
        }
    }
    for (int r = 0; r < MC_ROWS; r++) _mm256_storeu_ps(acc + (i + r) * n + j, c[r]);
}

// n % 8 == 0: 16-column tiles, then one 8-column tile when n % 16 == 8 (a
// normalised core's dv + 1 columns pad to 72 here instead of 80).
__attribute__((target("avx,f16c"), always_inline))
static inline void mc_half_gemm_f16c_body(const float *a, const float *b, float *acc, size_t m, size_t n, size_t k,
                                          const int split) {
    for (size_t i = 0; i < m; i += MC_ROWS) {
        if (n % 16) mc_half_tile8_f16c(a, b, acc, i, n, k, split);
        for (size_t j = 0; j + 16 <= n; j += 16) {
            __m256 c[MC_ROWS][2];
            for (int r = 0; r < MC_ROWS; r++) c[r][0] = c[r][1] = _mm256_setzero_ps();
            for (size_t p = 0; p < k; p++) {
                __m256 b0 = _mm256_loadu_ps(b + p * n + j), b1 = _mm256_loadu_ps(b + p * n + j + 8);
                for (int r = 0; r < MC_ROWS; r++) {
                    __m256 av = _mm256_broadcast_ss(a + (i + r) * k + p);
                    c[r][0] = MC_F16C_STEP(c[r][0], av, b0, split);
                    c[r][1] = MC_F16C_STEP(c[r][1], av, b1, split);
                }
            }
            for (int r = 0; r < MC_ROWS; r++) {
                _mm256_storeu_ps(acc + (i + r) * n + j, c[r][0]);
                _mm256_storeu_ps(acc + (i + r) * n + j + 8, c[r][1]);
            }
        }
    }
}
__attribute__((target("avx,f16c")))
static void mc_half_gemm_f16c_split(const float *a, const float *b, float *acc, size_t m, size_t n, size_t k) {
    mc_half_gemm_f16c_body(a, b, acc, m, n, k, 1);
}
__attribute__((target("avx,f16c")))
static void mc_half_gemm_f16c(const float *a, const float *b, float *acc, size_t m, size_t n, size_t k) {
    if (mc_half_sums_bounded(a, b, m, n, k)) { mc_half_gemm_f16c_split(a, b, acc, m, n, k); return; }
    mc_half_gemm_f16c_body(a, b, acc, m, n, k, 0);
}

// ---- AVX-512F: 16 lanes, VCVTPS2PH/VCVTPH2PS on ZMM ----
__attribute__((target("avx512f"))) static inline __m512 mc_r16_avx512(__m512 x) {
    return _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
// The F16C path's Veltkamp split on 16 lanes (same operations, so the same
// rounding; valid under the same mc_half_sums_bounded condition). On Zen 4 it
// makes this kernel about 1.3x faster than two conversions per sum.
__attribute__((target("avx512f"))) static inline __m512 mc_r16_sum_split_avx512(__m512 t) {
    __m512 g = _mm512_mul_ps(t, _mm512_set1_ps(8193.0f));
    return _mm512_add_ps(g, _mm512_sub_ps(t, g));
}
__attribute__((target("avx512f,f16c"), always_inline))
static inline void mc_half_gemm_avx512_body(const float *a, const float *b, float *acc, size_t m, size_t n, size_t k,
                                            const int split) {
    for (size_t i = 0; i < m; i += MC_ROWS) {
        // n % 16 == 8: the last 8 columns on YMM, as the F16C path does, so a
        // normalised core's dv + 1 columns pad to 72 instead of 80 (each ZMM
        // operation costs two YMM ones on Zen 4 anyway).
        if (n % 16) mc_half_tile8_f16c(a, b, acc, i, n, k, split);
        for (size_t j = 0; j + 16 <= n; j += 16) {
            __m512 c[MC_ROWS];
            for (int r = 0; r < MC_ROWS; r++) c[r] = _mm512_setzero_ps();
            for (size_t p = 0; p < k; p++) {
                __m512 bv = _mm512_loadu_ps(b + p * n + j);
                for (int r = 0; r < MC_ROWS; r++) {
                    __m512 av = _mm512_set1_ps(a[(i + r) * k + p]);
                    __m512 t = _mm512_add_ps(c[r], mc_r16_avx512(_mm512_mul_ps(av, bv)));
                    c[r] = split ? mc_r16_sum_split_avx512(t) : mc_r16_avx512(t);
                }
            }
            for (int r = 0; r < MC_ROWS; r++) _mm512_storeu_ps(acc + (i + r) * n + j, c[r]);
        }
    }
}
__attribute__((target("avx512f,f16c")))
static void mc_half_gemm_avx512_split(const float *a, const float *b, float *acc, size_t m, size_t n, size_t k) {
    mc_half_gemm_avx512_body(a, b, acc, m, n, k, 1);
}
__attribute__((target("avx512f,f16c")))
static void mc_half_gemm_avx512(const float *a, const float *b, float *acc, size_t m, size_t n, size_t k) {
    if (mc_half_sums_bounded(a, b, m, n, k)) { mc_half_gemm_avx512_split(a, b, acc, m, n, k); return; }
    mc_half_gemm_avx512_body(a, b, acc, m, n, k, 0);
}

// ---- AVX512-FP16: native binary16 multiply and add, 16 lanes (YMM) ----
#define MC_FP16_TARGET "avx512fp16,avx512vl,avx512bw,avx512f"
__attribute__((target(MC_FP16_TARGET)))
static void mc_half_gemm_fp16(const float *a, const float *b, float *acc, size_t m, size_t n, size_t k) {
    // Operands are binary16 values held in binary32: converting them is exact.
    _Float16 *ah = malloc(sizeof(_Float16) * m * k), *bh = malloc(sizeof(_Float16) * k * n);
    if (!ah || !bh) { free(ah); free(bh); mc_half_gemm_avx512(a, b, acc, m, n, k); return; }
    for (size_t e = 0; e < m * k; e++) ah[e] = (_Float16)a[e];
    for (size_t e = 0; e + 16 <= k * n; e += 16)
        _mm256_storeu_si256((__m256i *)(bh + e),
                            _mm512_cvtps_ph(_mm512_loadu_ps(b + e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (size_t i = 0; i < m; i += MC_ROWS) {
        for (size_t j = 0; j < n; j += 16) {
            __m256h c[MC_ROWS];
            for (int r = 0; r < MC_ROWS; r++) c[r] = _mm256_setzero_ph();
            for (size_t p = 0; p < k; p++) {
                __m256h bv = _mm256_loadu_ph(bh + p * n + j);
                for (int r = 0; r < MC_ROWS; r++) {
                    __m256h prod = _mm256_mul_ph(_mm256_set1_ph(ah[(i + r) * k + p]), bv);
                    c[r] = _mm256_add_ph(c[r], prod);
                }
            }
            for (int r = 0; r < MC_ROWS; r++) _mm512_storeu_ps(acc + (i + r) * n + j, _mm512_cvtxph_ps(c[r]));
        }
    }
    free(ah);
    free(bh);
}

static unsigned long long mc_xgetbv0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

/// 0 scalar, 1 F16C, 2 AVX-512F, 3 AVX512-FP16 (CPUID and OS state checked).
static int mc_probe_gemm_path(void) {
    if (!mc_half_has_f16c()) return 0;
    unsigned a, b, c, d;
    __cpuid(0, a, b, c, d);
    if (a < 7) return 1;
    __cpuid(1, a, b, c, d);
    if (!((c >> 27) & 1) || (mc_xgetbv0() & 0xe6) != 0xe6) return 1; // opmask, ZMM state
    __cpuid_count(7, 0, a, b, c, d);
    int f = (b >> 16) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1, fp16 = (d >> 23) & 1;
    if (!f) return 1;
    return (fp16 && bw && vl) ? 3 : 2;
}
/// The probe, once: CPUID is a trap to the hypervisor in a virtual machine
/// (measured: 5% of pure binary16 kernel time when probed on every product).
static int mc_detect_gemm_path(void) {
    static int detected = -1;
    if (detected < 0) detected = mc_probe_gemm_path();
    return detected;
}
#endif

static int mc_gemm_path = -1;

int mc_half_gemm_path(void) {
#ifdef MC_X86
    if (mc_gemm_path < 0) {
        int forced = -1;
        const char *e = getenv("MAMBACHECK_HALF_PATH"); // testing: cap the path (0 scalar … 3 native)
        if (e && *e >= '0' && *e <= '3' && e[1] == 0) forced = *e - '0';
        int best = mc_detect_gemm_path();
        mc_gemm_path = (forced >= 0 && forced < best) ? forced : best;
    }
    return mc_gemm_path;
#else
    return 0;
#endif
}

#ifdef MC_X86
static size_t mc_half_gemm_columns_on(int path) { return path == 1 || path == 2 ? 8 : MC_HALF_GEMM_COLUMNS; }
#endif

size_t mc_half_gemm_columns(void) {
#ifdef MC_X86
    return mc_half_gemm_columns_on(mc_half_gemm_path());
#else
    return MC_HALF_GEMM_COLUMNS;
#endif
}

int mc_half_gemm_on_path(int path, const float *a, const float *b, float *acc, size_t m, size_t n, size_t k) {
#ifdef MC_X86
    if (path < 0 || path > mc_detect_gemm_path()) return 0;
    if (path > 0 && m % MC_HALF_GEMM_ROWS == 0 && n % mc_half_gemm_columns_on(path) == 0) {
        if (path == 3) { mc_half_gemm_fp16(a, b, acc, m, n, k); return 1; }
        if (path == 2) { mc_half_gemm_avx512(a, b, acc, m, n, k); return 1; }
        mc_half_gemm_f16c(a, b, acc, m, n, k);
        return 1;
    }
#else
    if (path != 0) return 0;
#endif
    mc_half_gemm_scalar(a, b, acc, m, n, k);
    return 1;
}

void mc_half_gemm(const float *a, const float *b, float *acc, size_t m, size_t n, size_t k) {
    mc_half_gemm_on_path(mc_half_gemm_path(), a, b, acc, m, n, k);
}

