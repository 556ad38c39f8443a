// The kernels' vector code in C (run-time dispatch, no -m flags): bulk
// binary16 <-> binary32 conversion, the exact binary16 matrix product, and
// the packing helpers around it (transpose, second-order pair products).
//
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

// ---- Exact binary16 matrix product (pure binary16 mode) ----
//
// acc[i·n + j] = s_k, where s_0 = +0 and s_{p+1} = h(s_p + h(a[i·k + p] · b[p·n + j])),
// h = round to binary16 (nearest, ties to even), all values binary16 held in
// binary32. Row-major a (m×k), b (k×n), acc (m×n). Paths, chosen at run time:
// AVX512-FP16 native arithmetic, AVX-512F or F16C conversion after binary32
// operations (exact, see HalfGemm.c), or scalar. The vector paths need
// m % MC_HALF_GEMM_ROWS == 0 and n % mc_half_gemm_columns() == 0 (a divisor
// of MC_HALF_GEMM_COLUMNS; callers pad with zero rows/columns); other sizes
// take the scalar path.
#define MC_HALF_GEMM_ROWS 4
#define MC_HALF_GEMM_COLUMNS 16
void mc_half_gemm(const float *a, const float *b, float *acc, size_t m, size_t n, size_t k);
/// The column multiple of the path in use: 8 on F16C and AVX-512F, MC_HALF_GEMM_COLUMNS (16) on AVX512-FP16.
size_t mc_half_gemm_columns(void);
/// mc_half_gemm on a given path (0…3, as mc_half_gemm_path) if this CPU has it: returns 1,
/// else 0 and computes nothing. For tests: every path gives the same bits (NaN payloads aside).
int mc_half_gemm_on_path(int path, const float *a, const float *b, float *acc, size_t m, size_t n, size_t k);
/// The path in use: 0 scalar, 1 F16C, 2 AVX-512F, 3 AVX512-FP16. MAMBACHECK_HALF_PATH=0…3
/// in the environment caps it (read once; for tests and benchmarks).
int mc_half_gemm_path(void);

/// out[j·ldo + i] = x[i·ldx + j] for i < rows, j < columns (8 × 8 AVX blocks
/// where the CPU has AVX, else 16 × 16 scalar tiles; a copy either way).
void mc_transpose_float(const float *x, size_t ldx, size_t rows, size_t columns, float *out, size_t ldo);
/// mc_transpose_float on a given path (0 scalar, 1 AVX) if this CPU has it: returns 1, else 0
/// and writes nothing. For tests.
int mc_transpose_float_on(int path, const float *x, size_t ldx, size_t rows, size_t columns, float *out, size_t ldo);

/// The packed second-order products over `rows` lanes (all matrices `· × rows`, leading
/// dimension `rows`): for i < dk, output row e = i(2dk − i + 1)/2 + (j − i) is
/// x[i,:] ∘ d[i,:] for j = i and x[i,:] ∘ y[j,:] for i < j < dk; one binary32
/// multiplication per element, so every path (scalar, AVX, AVX-512; chosen as
/// mc_half_gemm_path, capped by MAMBACHECK_HALF_PATH) gives the same bits.
void mc_pair_products(const float *x, const float *d, const float *y, size_t dk, size_t rows, float *out);
/// mc_pair_products on a given path (0 scalar, 1 AVX, 2–3 AVX-512) if this CPU has it:
/// returns 1, else 0 and writes nothing. For tests.
int mc_pair_products_on(int path, const float *x, const float *d, const float *y, size_t dk, size_t rows, float *out);
#endif
