#include "nd_nn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nd_bits.h"
#include "nd_blas.h"
#include "nd_generic.h"
#include "nd_parallel.h"
#include "nd_poll.h"
#include "nd_status.h"
#include "nd_vmath.h"

const char *const nd_act_names[ND_ACT_COUNT + 1] = {"identity", "tanh",     "silu",       "relu",
                                                    "sigmoid",  "softplus", "lecun_tanh", NULL};

size_t nd_dense_kernels_len(int n, const int64_t *widths)
{
    size_t len = 0;
    for (int l = 0; l < n; ++l)
        len += (size_t)widths[l] * (size_t)widths[l + 1];
    return len;
}

const char *nd_act_name(int act) { return (act >= 0 && act < ND_ACT_COUNT) ? nd_act_names[act] : NULL; }

int nd_check_labels(int64_t rows, int64_t classes, const int64_t *labels)
{
    for (int64_t r = 0; r < rows; ++r)
        if (labels[r] < 0 || labels[r] >= classes) {
            char rule[64];
            snprintf(rule, sizeof rule, "must lie in [0, %lld)", (long long)classes);
            return nd_arg_error("labels", (double)labels[r], rule);
        }
    return ND_OK;
}

/* The sizes of a Dense product: BLAS takes int dimensions. */
static int nd_dense_dims(int64_t rows, int64_t in, int64_t out)
{
    if (nd_blas_dims_ok(rows, in, out))
        return ND_OK;
    nd_arg_error_novalue("x", "and kernel need sizes in [0, 2^31 - 1], the BLAS limit");
    return ND_ERR_OVERFLOW;
}

static int nd_unknown_activation(int act) { return nd_arg_error("activation", act, "is not a known activation code"); }

/* Spike inputs: W is worked through in blocks of ND_SPIKE_COLS columns, each copied contiguous
 * and kept in cache while every row's selected entries are summed; dW takes dY in blocks of
 * ND_SPIKE_DW_COLS columns (8000 rows of 32 floats, 1 MB, stay in L2). */
enum { ND_SPIKE_COLS = 64, ND_SPIKE_DW_COLS = 32 };

#define ND_IMPL "nd_nn_impl.inc"
#include "nd_instantiate.h"
