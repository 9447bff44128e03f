#include "nd_nn.h"

#include <stdlib.h>
#include <string.h>

#include "nd_bits.h"
#include "nd_blas.h"
#include "nd_generic.h"
#include "nd_parallel.h"
#include "nd_status.h"
#include "nd_vmath.h"

const char *const nd_act_names[ND_ACT_COUNT + 1] = {"identity", "tanh",     "silu",       "relu",
                                                    "sigmoid",  "softplus", "lecun_tanh", NULL};

const char *nd_act_name(int act) { return (act >= 0 && act < ND_ACT_COUNT) ? nd_act_names[act] : NULL; }

/* Spike inputs: W is worked through in blocks of ND_SPIKE_COLS columns, each copied contiguous
 * and kept in cache while every row's selected entries are summed; dW takes dY in blocks of
 * ND_SPIKE_DW_COLS columns (8000 rows of 32 floats, 1 MB, stay in L2). */
enum { ND_SPIKE_COLS = 64, ND_SPIKE_DW_COLS = 32 };

#define ND_IMPL "nd_nn_impl.inc"
#include "nd_instantiate.h"
