#include "nd_mlp.h"

#include "nd_blas.h"
#include "nd_generic.h"
#include "nd_status.h"
#include "nd_vmath.h"

const char *nd_act_name(int act)
{
    static const char *names[ND_ACT_COUNT] = {"identity", "tanh", "silu", "relu", "sigmoid", "softplus"};
    return (act >= 0 && act < ND_ACT_COUNT) ? names[act] : NULL;
}

#define ND_T float
#define ND_SFX f32
#include "nd_mlp_impl.inc"
#undef ND_T
#undef ND_SFX

#define ND_T double
#define ND_SFX f64
#include "nd_mlp_impl.inc"
#undef ND_T
#undef ND_SFX
