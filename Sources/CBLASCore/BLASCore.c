#define _GNU_SOURCE
#include "CBLASCore.h"
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

// OpenBLAS entry points. gotoblas_dynamic_* exist only in DYNAMIC_ARCH
// builds, so they are looked up at run time (linking them would fail elsewhere).
char *openblas_get_corename(void);
void cblas_sgemm(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
typedef char *(*corename_fn)(void);
typedef void (*void_fn)(void);
typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float,
                         float *, int);

/// Kernel tier of an OpenBLAS family name: 0 pre-AVX2, 1 AVX2+FMA, 2 AVX-512,
/// 3 AVX-512 with BF16; -1 for a name this table does not know (then nothing
/// is changed: a newer OpenBLAS knows better than this table).
static int mc_tier(const char *name) {
    static const char *const old[] = {
        "Katmai", "Coppermine", "Northwood", "Prescott", "Banias", "Atom", "Core2", "Penryn", "Dunnington",
        "Nehalem", "Athlon", "Opteron", "Opteron(SSE3)", "Barcelona", "Bobcat", "Bulldozer", "Piledriver",
        "Steamroller", "Excavator", "Sandybridge", "Nano", "Unknown"};
    if (name == NULL) return -1;
    for (size_t i = 0; i < sizeof old / sizeof old[0]; i++)
        if (strcasecmp(name, old[i]) == 0) return 0;
    if (strcasecmp(name, "Haswell") == 0 || strcasecmp(name, "Zen") == 0) return 1;
    if (strcasecmp(name, "SkylakeX") == 0) return 2;
    if (strcasecmp(name, "Cooperlake") == 0 || strcasecmp(name, "SapphireRapids") == 0) return 3;
    return -1;
}

const char *mc_blas_core_better(const char *current, mc_cpu_features_t f) {
    // Families Debian's 0.3.21 DYNAMIC_ARCH build contains (SapphireRapids is not
    // among them; its sgemm kernel is SkylakeX's, as is Cooperlake's).
    const char *best = NULL;
    int tier = 0;
    if (f.avx512_bf16) { best = "Cooperlake"; tier = 3; }
    else if (f.avx512) { best = "SkylakeX"; tier = 2; }
    else if (f.avx2_fma) { best = f.amd ? "Zen" : "Haswell"; tier = 1; }
    int now = mc_tier(current);
    if (best == NULL || now < 0 || now >= tier) return NULL;
    return best;
}

/// Exact check of the kernels now selected: small-integer matrices, whose
/// products and sums are exact in binary32 in any order, on a tiny shape and
/// on one large enough for the blocked GEMM path.
static int mc_sgemm_exact(sgemm_fn sgemm) {
    static const int shapes[2][3] = {{7, 5, 3}, {96, 80, 72}};
    for (int s = 0; s < 2; s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *a = malloc(sizeof(float) * (size_t)(m * k)), *b = malloc(sizeof(float) * (size_t)(k * n));
        float *c = malloc(sizeof(float) * (size_t)(m * n));
        if (!a || !b || !c) { free(a); free(b); free(c); return 0; }
        for (int i = 0; i < m * k; i++) a[i] = (float)((i * 7 + 3) % 17 - 8);
        for (int i = 0; i < k * n; i++) b[i] = (float)((i * 5 + 1) % 13 - 6);
        // CblasRowMajor = 101, CblasNoTrans = 111
        sgemm(101, 111, 111, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
        int ok = 1;
        for (int i = 0; i < m && ok; i++)
            for (int j = 0; j < n && ok; j++) {
                long acc = 0;
                for (int p = 0; p < k; p++) acc += (long)a[i * k + p] * (long)b[p * n + j];
                ok = c[i * n + j] == (float)acc;
            }
        free(a); free(b); free(c);
        if (!ok) return 0;
    }
    return 1;
}

static char mc_detected[32];
static int mc_action = -1;

static void mc_copy_name(char *dst, const char *src) {
    strncpy(dst, src ? src : "", 31);
    dst[31] = 0;
}

/// Re-runs OpenBLAS's dynamic selection with `name` forced (or, for NULL, its
/// own detection); returns the family then in use.
static const char *mc_reselect(void_fn quit, void_fn init, corename_fn corename, const char *name) {
    quit();
    if (name) setenv("OPENBLAS_CORETYPE", name, 1);
    init();
    if (name) unsetenv("OPENBLAS_CORETYPE"); // the user's environment stays as it was
    return corename();
}

mc_blas_core_action_t mc_blas_core_select(void) {
    if (mc_action >= 0) return (mc_blas_core_action_t)mc_action;
    corename_fn corename = openblas_get_corename;
    void_fn quit = (void_fn)dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit");
    void_fn init = (void_fn)dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init");
    sgemm_fn sgemm = cblas_sgemm;
    mc_copy_name(mc_detected, corename());
    const char *user = getenv("OPENBLAS_CORETYPE");
    if (user && *user) { mc_action = MC_BLAS_CORE_USER; return MC_BLAS_CORE_USER; }
    if (!quit || !init) { mc_action = MC_BLAS_CORE_UNAVAILABLE; return MC_BLAS_CORE_UNAVAILABLE; }
    const char *better = mc_blas_core_better(mc_detected, mc_cpu_features());
    if (better == NULL) { mc_action = MC_BLAS_CORE_KEPT; return MC_BLAS_CORE_KEPT; }
    const char *now = mc_reselect(quit, init, corename, better);
    if (mc_tier(now) > mc_tier(mc_detected) && mc_sgemm_exact(sgemm)) {
        mc_action = MC_BLAS_CORE_UPGRADED;
    } else {
        mc_reselect(quit, init, corename, NULL); // back to OpenBLAS's own choice
        mc_action = MC_BLAS_CORE_KEPT;
    }
    return (mc_blas_core_action_t)mc_action;
}

const char *mc_blas_core_detected(void) { return mc_detected; }

const char *mc_blas_core_in_use(void) {
    const char *name = openblas_get_corename();
    return name ? name : "";
}

#ifndef MC_BLASCORE_NO_CONSTRUCTOR // (defined only by a stand-alone C check of the upgrade path)
// Runs after OpenBLAS's own constructor (a load-time dependency is
// initialised before its dependents) and before main and any BLAS call.
// MAMBACHECK_KEEP_OPENBLAS_CORE=1 disables it (to measure OpenBLAS's own choice).
__attribute__((constructor)) static void mc_blas_core_constructor(void) {
    const char *keep = getenv("MAMBACHECK_KEEP_OPENBLAS_CORE");
    if (keep && *keep && strcmp(keep, "0") != 0) {
        mc_copy_name(mc_detected, openblas_get_corename());
        mc_action = MC_BLAS_CORE_KEPT;
        return;
    }
    mc_blas_core_select();
}
#endif
