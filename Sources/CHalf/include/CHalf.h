// Bulk binary16 <-> binary32 conversion.
//
// Uses the F16C instructions (VCVTPH2PS / VCVTPS2PH, round-to-nearest-even)
// when the CPU has them, selected at run time, so the package needs no
// -mf16c flag (and so no unsafeFlags). Elsewhere a scalar, bit-exact
// fallback is used. Both paths give identical results: binary16 -> binary32
// is exact, and binary32 -> binary16 rounds to nearest, ties to even, with
// subnormals and overflow to infinity, NaN kept NaN.
#ifndef MAMBACHECK_CHALF_H
#define MAMBACHECK_CHALF_H
#include <stddef.h>
#include <stdint.h>

/// 1 when the F16C path is in use on this CPU, else 0.
int mc_half_has_f16c(void);
/// dst[i] = (float)src[i] for i < n (exact).
void mc_half_to_float(const uint16_t *src, float *dst, size_t n);
/// dst[i] = binary16(src[i]) rounded to nearest even, for i < n.
void mc_float_to_half(const float *src, uint16_t *dst, size_t n);
/// x[i] = (float)binary16(x[i]): round every element through binary16 in place.
void mc_round_float_through_half(float *x, size_t n);
/// Scalar reference conversions (always available; used as the fallback).
float mc_half_bits_to_float_scalar(uint16_t h);
uint16_t mc_float_to_half_bits_scalar(float f);
#endif
