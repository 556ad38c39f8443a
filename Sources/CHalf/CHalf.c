#include "CHalf.h"
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <cpuid.h>
#define MC_X86 1
#endif

float mc_half_bits_to_float_scalar(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { // subnormal: normalise
            int e = -1;
            do { man <<= 1; e++; } while ((man & 0x400u) == 0);
            man &= 0x3ffu;
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | (man << 13);
        }
    } else if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13) | (man ? 0x400000u : 0);
    } else {
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t mc_float_to_half_bits_scalar(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t exp = (x >> 23) & 0xffu;
    uint32_t man = x & 0x7fffffu;
    if (exp == 0xff) return sign | 0x7c00u | (man ? (uint16_t)(0x200u | (man >> 13)) : 0);
    int e = (int)exp - 127 + 15;
    if (e >= 0x1f) return sign | 0x7c00u;
    if (e <= 0) {
        if (e < -10) return sign; // below half the smallest subnormal: rounds to zero
        man |= 0x800000u;
        int shift = 14 - e;
        uint32_t half = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1u);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1u))) half++;
        return sign | (uint16_t)half;
    }
    uint32_t half = ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) half++; // may carry into exp / to inf: correct
    return sign | (uint16_t)half;
}

#ifdef MC_X86
static int mc_detect_f16c(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int f16c = (c & (1u << 29)) != 0;
    int avx = (c & (1u << 28)) != 0;
    int osxsave = (c & (1u << 27)) != 0;
    if (!(f16c && avx && osxsave)) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 6u) == 6u; // OS saves XMM and YMM state
}
static int mc_f16c_state = -1;
int mc_half_has_f16c(void) {
    if (mc_f16c_state < 0) mc_f16c_state = mc_detect_f16c();
    return mc_f16c_state;
}
__attribute__((target("avx,f16c")))
static void mc_h2f_f16c(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(src + i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; i++) dst[i] = mc_half_bits_to_float_scalar(src[i]);
}
__attribute__((target("avx,f16c")))
static void mc_f2h_f16c(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 f = _mm256_loadu_ps(src + i);
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < n; i++) dst[i] = mc_float_to_half_bits_scalar(src[i]);
}
__attribute__((target("avx,f16c")))
static void mc_round_f16c(float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 f = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT)));
    }
    for (; i < n; i++) x[i] = mc_half_bits_to_float_scalar(mc_float_to_half_bits_scalar(x[i]));
}
#else
int mc_half_has_f16c(void) { return 0; }
#endif

void mc_half_to_float(const uint16_t *src, float *dst, size_t n) {
#ifdef MC_X86
    if (mc_half_has_f16c()) { mc_h2f_f16c(src, dst, n); return; }
#endif
    for (size_t i = 0; i < n; i++) dst[i] = mc_half_bits_to_float_scalar(src[i]);
}

void mc_float_to_half(const float *src, uint16_t *dst, size_t n) {
#ifdef MC_X86
    if (mc_half_has_f16c()) { mc_f2h_f16c(src, dst, n); return; }
#endif
    for (size_t i = 0; i < n; i++) dst[i] = mc_float_to_half_bits_scalar(src[i]);
}

void mc_round_float_through_half(float *x, size_t n) {
#ifdef MC_X86
    if (mc_half_has_f16c()) { mc_round_f16c(x, n); return; }
#endif
    for (size_t i = 0; i < n; i++) x[i] = mc_half_bits_to_float_scalar(mc_float_to_half_bits_scalar(x[i]));
}
