#include "nd_blas.h"

void nd_blas_set_num_threads(int n)
{
    if (n > 0)
        openblas_set_num_threads(n);
}

int nd_blas_get_num_threads(void) { return openblas_get_num_threads(); }

const char *nd_blas_config(void) { return openblas_get_config(); }

int nd_blas_single_thread_begin(void)
{
    int previous = openblas_get_num_threads();
    if (previous != 1)
        openblas_set_num_threads(1);
    return previous;
}

void nd_blas_single_thread_end(int previous)
{
    if (previous != 1)
        openblas_set_num_threads(previous);
}
