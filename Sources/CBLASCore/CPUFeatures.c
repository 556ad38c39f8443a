#include "CBLASCore.h"
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <string.h>

static unsigned long long mc_xcr0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static mc_cpu_features_t mc_detect(void) {
    mc_cpu_features_t f = {0, 0, 0, 0, 0};
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return f;
    unsigned maxLeaf = a;
    char vendor[13];
    memcpy(vendor, &b, 4); memcpy(vendor + 4, &d, 4); memcpy(vendor + 8, &c, 4); vendor[12] = 0;
    f.amd = strcmp(vendor, "AuthenticAMD") == 0 || strcmp(vendor, "HygonGenuine") == 0;
    __cpuid(1, a, b, c, d);
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (!(osxsave && avx) || maxLeaf < 7) return f;
    unsigned long long xcr0 = mc_xcr0();
    int ymm = (xcr0 & 0x6) == 0x6;              // XMM, YMM
    int zmm = ymm && (xcr0 & 0xe0) == 0xe0;     // opmask, ZMM_Hi256, Hi16_ZMM
    unsigned a7, b7, c7, d7;
    __cpuid_count(7, 0, a7, b7, c7, d7);
    int avx2 = (b7 >> 5) & 1;
    int avx512 = ((b7 >> 16) & 1) && ((b7 >> 17) & 1) && ((b7 >> 28) & 1) && ((b7 >> 30) & 1) && ((b7 >> 31) & 1);
    f.avx2_fma = ymm && avx2 && fma;
    f.avx512 = f.avx2_fma && zmm && avx512;
    f.avx512_fp16 = f.avx512 && ((d7 >> 23) & 1);
    if (a7 >= 1) {
        unsigned a71, b71, c71, d71;
        __cpuid_count(7, 1, a71, b71, c71, d71);
        f.avx512_bf16 = f.avx512 && ((a71 >> 5) & 1);
    }
    return f;
}
#else
static mc_cpu_features_t mc_detect(void) { mc_cpu_features_t f = {0, 0, 0, 0, 0}; return f; }
#endif

mc_cpu_features_t mc_cpu_features(void) {
    static int done = 0;
    static mc_cpu_features_t cached;
    if (!done) { cached = mc_detect(); done = 1; } // idempotent: a racing second detection writes the same
    return cached;
}
