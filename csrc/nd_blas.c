#include "nd_blas.h"

void nd_blas_set_num_threads(int n)
{
    if (n > 0)
        openblas_set_num_threads(n);
}

int nd_blas_get_num_threads(void) { return openblas_get_num_threads(); }

const char *nd_blas_config(void) { return openblas_get_config(); }
