#include "CBLASCore.h"
#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

// Why: glibc maps every freed-then-reallocated block of 128 KiB or more
// afresh (after a dynamic threshold that tops out at the first large free)
// and trims the heap's free top, so a process that calls kernels in a loop
// page-faults their multi-MiB buffers in on every call.
int mc_keep_freed_buffers(int mmap_threshold, int trim_threshold) {
#if defined(__GLIBC__)
    if (getenv("GLIBC_TUNABLES") || getenv("MALLOC_MMAP_THRESHOLD_") || getenv("MALLOC_TRIM_THRESHOLD_"))
        return 0;  // the user's own settings stay in charge
    return mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 && mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1;
#else
    (void)mmap_threshold; (void)trim_threshold;
    return 0;
#endif
}
