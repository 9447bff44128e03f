#include "nd_mlp.h"

#include "nd_blas.h"
#include "nd_generic.h"
#include "nd_status.h"
#include "nd_vmath.h"

const char *nd_act_name(int act)
{
    static const char *names[ND_ACT_COUNT] = {"identity", "tanh", "silu", "relu", "sigmoid", "softplus", "lecun_tanh"};
    return (act >= 0 && act < ND_ACT_COUNT) ? names[act] : NULL;
}

#define ND_IMPL "nd_mlp_impl.inc"
#include "nd_instantiate.h"
