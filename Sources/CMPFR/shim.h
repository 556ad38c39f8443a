// Bridge to MPFR and GMP for Swift.
//
// Several MPFR/GMP entry points are macros (mpfr_set, mpfr_sgn, mpfr_init_set_*,
// mpq_* -> __gmpq_*) that Swift cannot call, and variadic ones (mpfr_printf,
// mpfr_inits) cannot be imported at all. Each wrapper here is a plain static
// inline function with a `mc_` prefix so the Swift side never depends on
// whether the library spells an operation as a macro or a function.
#ifndef MAMBACHECK_CMPFR_SHIM_H
#define MAMBACHECK_CMPFR_SHIM_H
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <gmp.h>
#include <mpfr.h>

static inline void mc_init2(mpfr_ptr x, long prec) { mpfr_init2(x, (mpfr_prec_t)prec); }
static inline void mc_clear(mpfr_ptr x) { mpfr_clear(x); }
static inline long mc_get_prec(mpfr_srcptr x) { return (long)mpfr_get_prec(x); }
static inline void mc_set_prec(mpfr_ptr x, long p) { mpfr_set_prec(x, (mpfr_prec_t)p); }
static inline int mc_set(mpfr_ptr r, mpfr_srcptr a, mpfr_rnd_t m) { return mpfr_set(r, a, m); }
static inline int mc_set_d(mpfr_ptr r, double d, mpfr_rnd_t m) { return mpfr_set_d(r, d, m); }
static inline int mc_set_flt(mpfr_ptr r, float f, mpfr_rnd_t m) { return mpfr_set_flt(r, f, m); }
static inline int mc_set_si(mpfr_ptr r, long v, mpfr_rnd_t m) { return mpfr_set_si(r, v, m); }
static inline int mc_set_ui(mpfr_ptr r, unsigned long v, mpfr_rnd_t m) { return mpfr_set_ui(r, v, m); }
static inline int mc_set_si_2exp(mpfr_ptr r, long v, long e, mpfr_rnd_t m) { return mpfr_set_si_2exp(r, v, (mpfr_exp_t)e, m); }
static inline int mc_set_z(mpfr_ptr r, mpz_srcptr z, mpfr_rnd_t m) { return mpfr_set_z(r, z, m); }
static inline int mc_set_q(mpfr_ptr r, mpq_srcptr q, mpfr_rnd_t m) { return mpfr_set_q(r, q, m); }
static inline void mc_set_nan(mpfr_ptr r) { mpfr_set_nan(r); }
static inline void mc_set_inf(mpfr_ptr r, int sign) { mpfr_set_inf(r, sign); }
static inline void mc_set_zero(mpfr_ptr r, int sign) { mpfr_set_zero(r, sign); }
static inline double mc_get_d(mpfr_srcptr a, mpfr_rnd_t m) { return mpfr_get_d(a, m); }
static inline float mc_get_flt(mpfr_srcptr a, mpfr_rnd_t m) { return mpfr_get_flt(a, m); }
static inline int mc_get_q(mpq_ptr q, mpfr_srcptr a) { mpfr_get_q(q, a); return 0; }
static inline int mc_sgn(mpfr_srcptr a) { return mpfr_sgn(a); }
static inline int mc_signbit(mpfr_srcptr a) { return mpfr_signbit(a) ? 1 : 0; }
static inline int mc_nan_p(mpfr_srcptr a) { return mpfr_nan_p(a) ? 1 : 0; }
static inline int mc_inf_p(mpfr_srcptr a) { return mpfr_inf_p(a) ? 1 : 0; }
static inline int mc_zero_p(mpfr_srcptr a) { return mpfr_zero_p(a) ? 1 : 0; }
static inline int mc_number_p(mpfr_srcptr a) { return mpfr_number_p(a) ? 1 : 0; }
static inline long mc_get_exp(mpfr_srcptr a) { return (long)mpfr_get_exp(a); }
static inline int mc_cmp(mpfr_srcptr a, mpfr_srcptr b) { return mpfr_cmp(a, b); }
static inline int mc_cmpabs(mpfr_srcptr a, mpfr_srcptr b) { return mpfr_cmpabs(a, b); }
static inline int mc_equal_p(mpfr_srcptr a, mpfr_srcptr b) { return mpfr_equal_p(a, b); }
static inline int mc_less_p(mpfr_srcptr a, mpfr_srcptr b) { return mpfr_less_p(a, b); }
static inline int mc_abs(mpfr_ptr r, mpfr_srcptr a, mpfr_rnd_t m) { return mpfr_abs(r, a, m); }
static inline int mc_neg(mpfr_ptr r, mpfr_srcptr a, mpfr_rnd_t m) { return mpfr_neg(r, a, m); }
static inline int mc_add(mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr b, mpfr_rnd_t m) { return mpfr_add(r, a, b, m); }
static inline int mc_sub(mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr b, mpfr_rnd_t m) { return mpfr_sub(r, a, b, m); }
static inline int mc_mul(mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr b, mpfr_rnd_t m) { return mpfr_mul(r, a, b, m); }
static inline int mc_div(mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr b, mpfr_rnd_t m) { return mpfr_div(r, a, b, m); }
static inline int mc_fma(mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr b, mpfr_srcptr c, mpfr_rnd_t m) { return mpfr_fma(r, a, b, c, m); }
static inline int mc_fms(mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr b, mpfr_srcptr c, mpfr_rnd_t m) { return mpfr_fms(r, a, b, c, m); }
static inline int mc_sqr(mpfr_ptr r, mpfr_srcptr a, mpfr_rnd_t m) { return mpfr_sqr(r, a, m); }
static inline int mc_sqrt(mpfr_ptr r, mpfr_srcptr a, mpfr_rnd_t m) { return mpfr_sqrt(r, a, m); }
static inline int mc_rec_sqrt(mpfr_ptr r, mpfr_srcptr a, mpfr_rnd_t m) { return mpfr_rec_sqrt(r, a, m); }
static inline int mc_exp(mpfr_ptr r, mpfr_srcptr a, mpfr_rnd_t m) { return mpfr_exp(r, a, m); }
static inline int mc_expm1(mpfr_ptr r, mpfr_srcptr a, mpfr_rnd_t m) { return mpfr_expm1(r, a, m); }
static inline int mc_log(mpfr_ptr r, mpfr_srcptr a, mpfr_rnd_t m) { return mpfr_log(r, a, m); }
static inline int mc_log1p(mpfr_ptr r, mpfr_srcptr a, mpfr_rnd_t m) { return mpfr_log1p(r, a, m); }
static inline int mc_mul_2si(mpfr_ptr r, mpfr_srcptr a, long e, mpfr_rnd_t m) { return mpfr_mul_2si(r, a, e, m); }
static inline int mc_min(mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr b, mpfr_rnd_t m) { return mpfr_min(r, a, b, m); }
static inline int mc_max(mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr b, mpfr_rnd_t m) { return mpfr_max(r, a, b, m); }
static inline int mc_const_pi(mpfr_ptr r, mpfr_rnd_t m) { return mpfr_const_pi(r, m); }
static inline int mc_strtofr(mpfr_ptr r, const char *s, char **end, int base, mpfr_rnd_t m) { return mpfr_strtofr(r, s, end, base, m); }
static inline char *mc_get_str(char *buf, long *exp, int base, size_t n, mpfr_srcptr a, mpfr_rnd_t m) {
    mpfr_exp_t e = 0; char *s = mpfr_get_str(buf, &e, base, n, a, m); *exp = (long)e; return s;
}
static inline void mc_free_str(char *s) { mpfr_free_str(s); }
// Exponent range and subnormal emulation (used to round to a storage format).
static inline long mc_get_emin(void) { return (long)mpfr_get_emin(); }
static inline long mc_get_emax(void) { return (long)mpfr_get_emax(); }
static inline int mc_set_emin(long e) { return mpfr_set_emin((mpfr_exp_t)e); }
static inline int mc_set_emax(long e) { return mpfr_set_emax((mpfr_exp_t)e); }
static inline int mc_check_range(mpfr_ptr x, int t, mpfr_rnd_t m) { return mpfr_check_range(x, t, m); }
static inline int mc_subnormalize(mpfr_ptr x, int t, mpfr_rnd_t m) { return mpfr_subnormalize(x, t, m); }
static inline long mc_prec_max(void) { return (long)MPFR_PREC_MAX; }
static inline long mc_prec_min(void) { return (long)MPFR_PREC_MIN; }

// GMP rationals (mpq_* are macros for __gmpq_*).
static inline void mc_q_init(mpq_ptr q) { mpq_init(q); }
static inline void mc_q_clear(mpq_ptr q) { mpq_clear(q); }
static inline void mc_q_set(mpq_ptr r, mpq_srcptr a) { mpq_set(r, a); }
static inline void mc_q_set_si(mpq_ptr r, long n, unsigned long d) { mpq_set_si(r, n, d); mpq_canonicalize(r); }
static inline int mc_q_set_str(mpq_ptr r, const char *s, int base) { int e = mpq_set_str(r, s, base); if (e == 0) mpq_canonicalize(r); return e; }
static inline void mc_q_set_d(mpq_ptr r, double d) { mpq_set_d(r, d); }
static inline double mc_q_get_d(mpq_srcptr a) { return mpq_get_d(a); }
static inline void mc_q_add(mpq_ptr r, mpq_srcptr a, mpq_srcptr b) { mpq_add(r, a, b); }
static inline void mc_q_sub(mpq_ptr r, mpq_srcptr a, mpq_srcptr b) { mpq_sub(r, a, b); }
static inline void mc_q_mul(mpq_ptr r, mpq_srcptr a, mpq_srcptr b) { mpq_mul(r, a, b); }
static inline void mc_q_div(mpq_ptr r, mpq_srcptr a, mpq_srcptr b) { mpq_div(r, a, b); }
static inline void mc_q_neg(mpq_ptr r, mpq_srcptr a) { mpq_neg(r, a); }
static inline int mc_q_cmp(mpq_srcptr a, mpq_srcptr b) { return mpq_cmp(a, b); }
static inline int mc_q_equal(mpq_srcptr a, mpq_srcptr b) { return mpq_equal(a, b); }
static inline int mc_q_sgn(mpq_srcptr a) { return mpq_sgn(a); }
static inline char *mc_q_get_str(mpq_srcptr a, int base) { return mpq_get_str(NULL, base, a); }
static inline void mc_gmp_free_str(char *s) {
    void (*freefunc)(void *, size_t);
    mp_get_memory_functions(NULL, NULL, &freefunc);
    freefunc(s, strlen(s) + 1);
}
#endif
