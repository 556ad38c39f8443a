// Out-of-place Float32 transpose for the pure binary16 GEMM's packing.
#include "CHalf.h"
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MC_X86 1
#endif

static void mc_transpose_block_scalar(const float *x, size_t ldx, size_t i0, size_t i1, size_t j0, size_t j1,
                                      float *out, size_t ldo) {
    for (size_t i = i0; i < i1; i++)
        for (size_t j = j0; j < j1; j++) out[j * ldo + i] = x[i * ldx + j];
}

#ifdef MC_X86
// One 8 × 8 block through registers (unpack, shuffle, lane permute): a data
// movement, so the result is the scalar loop's bit for bit.
__attribute__((target("avx"))) static inline void mc_transpose8x8(const float *x, size_t ldx, float *out, size_t ldo) {
    __m256 r0 = _mm256_loadu_ps(x + 0 * ldx), r1 = _mm256_loadu_ps(x + 1 * ldx);
    __m256 r2 = _mm256_loadu_ps(x + 2 * ldx), r3 = _mm256_loadu_ps(x + 3 * ldx);
    __m256 r4 = _mm256_loadu_ps(x + 4 * ldx), r5 = _mm256_loadu_ps(x + 5 * ldx);
    __m256 r6 = _mm256_loadu_ps(x + 6 * ldx), r7 = _mm256_loadu_ps(x + 7 * ldx);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(out + 0 * ldo, _mm256_permute2f128_ps(s0, s4, 0x20));
    _mm256_storeu_ps(out + 1 * ldo, _mm256_permute2f128_ps(s1, s5, 0x20));
    _mm256_storeu_ps(out + 2 * ldo, _mm256_permute2f128_ps(s2, s6, 0x20));
    _mm256_storeu_ps(out + 3 * ldo, _mm256_permute2f128_ps(s3, s7, 0x20));
    _mm256_storeu_ps(out + 4 * ldo, _mm256_permute2f128_ps(s0, s4, 0x31));
    _mm256_storeu_ps(out + 5 * ldo, _mm256_permute2f128_ps(s1, s5, 0x31));
    _mm256_storeu_ps(out + 6 * ldo, _mm256_permute2f128_ps(s2, s6, 0x31));
    _mm256_storeu_ps(out + 7 * ldo, _mm256_permute2f128_ps(s3, s7, 0x31));
}

__attribute__((target("avx")))
static void mc_transpose_avx(const float *x, size_t ldx, size_t rows, size_t columns, float *out, size_t ldo) {
    size_t r8 = rows / 8 * 8, c8 = columns / 8 * 8;
    for (size_t i = 0; i < r8; i += 8)
        for (size_t j = 0; j < c8; j += 8) mc_transpose8x8(x + i * ldx + j, ldx, out + j * ldo + i, ldo);
    mc_transpose_block_scalar(x, ldx, 0, r8, c8, columns, out, ldo);
    mc_transpose_block_scalar(x, ldx, r8, rows, 0, columns, out, ldo);
}
#endif

int mc_transpose_float_on(int path, const float *x, size_t ldx, size_t rows, size_t columns, float *out, size_t ldo) {
    if (path == 1) {
#ifdef MC_X86
        if (!mc_half_has_f16c()) return 0; // F16C implies AVX
        mc_transpose_avx(x, ldx, rows, columns, out, ldo);
        return 1;
#else
        return 0;
#endif
    }
    if (path != 0) return 0;
    // 16 × 16 tiles keep both sides' lines in cache.
    for (size_t i0 = 0; i0 < rows; i0 += 16)
        for (size_t j0 = 0; j0 < columns; j0 += 16)
            mc_transpose_block_scalar(x, ldx, i0, i0 + 16 < rows ? i0 + 16 : rows, j0,
                                      j0 + 16 < columns ? j0 + 16 : columns, out, ldo);
    return 1;
}

void mc_transpose_float(const float *x, size_t ldx, size_t rows, size_t columns, float *out, size_t ldo) {
    if (!mc_transpose_float_on(1, x, ldx, rows, columns, out, ldo)) mc_transpose_float_on(0, x, ldx, rows, columns, out, ldo);
}
