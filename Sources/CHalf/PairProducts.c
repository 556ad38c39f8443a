// The packed second-order features' products, vectorised with run-time
// dispatch (see CHalf.h, mc_pair_products).
#include "CHalf.h"
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MC_X86 1
#endif

// One product per element, no accumulation: every path gives the same bits.
static void mc_pair_products_scalar(const float *x, const float *d, const float *y, size_t dk, size_t rows, float *out) {
    for (size_t i = 0; i < dk; i++) {
        const float *xi = x + i * rows;
        for (size_t r = 0; r < rows; r++) out[r] = xi[r] * d[i * rows + r];
        out += rows;
        for (size_t j = i + 1; j < dk; j++, out += rows) {
            const float *yj = y + j * rows;
            for (size_t r = 0; r < rows; r++) out[r] = xi[r] * yj[r];
        }
    }
}

#ifdef MC_X86
__attribute__((target("avx")))
static void mc_pair_products_avx(const float *x, const float *d, const float *y, size_t dk, size_t rows, float *out) {
    size_t r8 = rows / 8 * 8;
    for (size_t i = 0; i < dk; i++) {
        const float *xi = x + i * rows;
        for (size_t j = i; j < dk; j++, out += rows) {
            const float *yj = j == i ? d + i * rows : y + j * rows;
            size_t r = 0;
            for (; r < r8; r += 8) _mm256_storeu_ps(out + r, _mm256_mul_ps(_mm256_loadu_ps(xi + r), _mm256_loadu_ps(yj + r)));
            for (; r < rows; r++) out[r] = xi[r] * yj[r];
        }
    }
}

__attribute__((target("avx512f")))
static void mc_pair_products_avx512(const float *x, const float *d, const float *y, size_t dk, size_t rows, float *out) {
    size_t r16 = rows / 16 * 16;
    __mmask16 tail = (__mmask16)((1u << (rows - r16)) - 1);
    for (size_t i = 0; i < dk; i++) {
        const float *xi = x + i * rows;
        for (size_t j = i; j < dk; j++, out += rows) {
            const float *yj = j == i ? d + i * rows : y + j * rows;
            size_t r = 0;
            for (; r < r16; r += 16) _mm512_storeu_ps(out + r, _mm512_mul_ps(_mm512_loadu_ps(xi + r), _mm512_loadu_ps(yj + r)));
            if (tail) _mm512_mask_storeu_ps(out + r, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, xi + r),
                                                                         _mm512_maskz_loadu_ps(tail, yj + r)));
        }
    }
}
#endif

int mc_pair_products_on(int path, const float *x, const float *d, const float *y, size_t dk, size_t rows, float *out) {
    if (path < 0 || path > mc_half_gemm_path()) return 0;
#ifdef MC_X86
    if (path >= 2) { mc_pair_products_avx512(x, d, y, dk, rows, out); return 1; }
    if (path == 1) { mc_pair_products_avx(x, d, y, dk, rows, out); return 1; }
#endif
    mc_pair_products_scalar(x, d, y, dk, rows, out);
    return 1;
}

void mc_pair_products(const float *x, const float *d, const float *y, size_t dk, size_t rows, float *out) {
    mc_pair_products_on(mc_half_gemm_path(), x, d, y, dk, rows, out);
}
