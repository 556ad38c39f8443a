// CBLAS from Debian's libopenblas-dev (cblas.h is installed through the
// alternatives system under /usr/include/x86_64-linux-gnu or /usr/include).
#include <cblas.h>
// OpenBLAS extensions used to report and pin the thread count in benchmarks.
int openblas_get_num_threads(void);
void openblas_set_num_threads(int num_threads);
char *openblas_get_corename(void);
char *openblas_get_config(void);
