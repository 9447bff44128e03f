#include "nd_snn.h"

#include <math.h>

#include "nd_bits.h"
#include "nd_generic.h"
#include "nd_parallel.h"
#include "nd_poll.h"
#include "nd_status.h"
#include "nd_vmath.h"

enum { ND_LIF_CHUNK = 256 }; /* neurons a kernel walks through every step at a time */

/* Sets bit pos of a packed spike raster whose byte another thread may be setting too. */
static inline void nd_spike_bit_set_shared(uint8_t *bits, int64_t pos)
{
    __atomic_fetch_or(&bits[pos >> 3], (uint8_t)(1u << (pos & 7)), __ATOMIC_RELAXED);
}

const char *const nd_lif_reset_names[] = {"subtract", "zero", NULL};
const char *const nd_lif_surrogate_names[] = {"sigmoid", "fast_sigmoid", "atan", NULL};
const char *const nd_encoding_names[] = {"constant", "poisson", "latency", NULL};

void nd_lif_params_default(nd_lif_params *p)
{
    p->tau = 2.0;
    p->beta = exp(-1.0 / p->tau); /* what the default tau gives, used only when beta_given */
    p->tau_given = p->beta_given = 0;
    p->threshold = 1.0;
    p->reset = ND_RESET_SUBTRACT;
    p->reset_delay = 0;
    p->surrogate = ND_SURROGATE_SIGMOID;
    p->slope = 10.0;
    p->detach_reset = 1;
    p->smooth = 0;
}

int nd_lif_params_check(const nd_lif_params *p)
{
    if (!p)
        return nd_arg_error_novalue("params", "must be given");
    if (p->tau_given && p->beta_given)
        return nd_arg_error_novalue("tau or beta", "may be given, not both");
    /* beta = exp(-1/tau) lies in (0, 1) for every such tau; beta itself may also be 0 (no
     * memory) or 1 (no leak: the integrate-and-fire neuron, docs/models.md §6) */
    ND_REQUIRE(p->tau > 0 && isfinite(p->tau), "tau", p->tau, "must be > 0 and finite");
    ND_REQUIRE(p->beta >= 0 && p->beta <= 1, "beta", p->beta, "must lie in [0, 1]");
    ND_REQUIRE(p->threshold > 0 && isfinite(p->threshold), "threshold", p->threshold, "must be > 0 and finite");
    ND_REQUIRE(p->reset == ND_RESET_SUBTRACT || p->reset == ND_RESET_ZERO, "reset", p->reset,
               "is not a known reset code");
    ND_REQUIRE(p->surrogate >= 0 && p->surrogate <= ND_SURROGATE_ATAN, "surrogate", p->surrogate,
               "is not a known surrogate code");
    ND_REQUIRE(p->slope > 0 && isfinite(p->slope), "slope", p->slope, "must be > 0 and finite");
    return ND_OK;
}

double nd_lif_decay(const nd_lif_params *p) { return p->beta_given ? p->beta : exp(-1.0 / p->tau); }

int nd_spike_bits_size(int64_t T, int64_t B, int64_t n, size_t *bytes)
{
    size_t count;
    if (T < 0 || B < 0 || n < 0)
        return nd_arg_error_novalue("spike raster", "must have sizes >= 0");
    if (!nd_mul3_size((size_t)T, (size_t)B, (size_t)n, &count))
        return nd_size_error("spike raster");
    *bytes = count / 8 + (count % 8 != 0);
    return ND_OK;
}

/* The parameters, then the raster's sizes: ND_OK with *q the parameters whose beta is the
 * decay the loops read. */
static int nd_lif_check(const nd_lif_params *p, int64_t T, int64_t B, int64_t n, nd_lif_params *q)
{
    int st = nd_lif_params_check(p);
    if (st != ND_OK)
        return st;
    ND_REQUIRE(T >= 0 && B >= 0 && n >= 0, "currents", T < 0 ? T : B < 0 ? B : n, "must have sizes >= 0");
    size_t count;
    if (!nd_mul3_size((size_t)T, (size_t)B, (size_t)n, &count))
        return nd_size_error("currents");
    *q = *p;
    q->beta = nd_lif_decay(p);
    return ND_OK;
}

int nd_encode_len(int encoding, int64_t T, int64_t n, size_t *len)
{
    ND_REQUIRE(encoding >= 0 && encoding <= ND_ENCODE_LATENCY, "encoding", encoding, "is not a known encoding code");
    ND_REQUIRE(T >= 1, "num_timesteps", T, "must be >= 1");
    ND_REQUIRE(n >= 0, "x", n, "must have a size >= 0");
    ND_REQUIRE(nd_mul_size((size_t)T, (size_t)n, len), "num_timesteps", T, "makes a spike train too large to address");
    return ND_OK;
}

#define ND_IMPL "nd_snn_impl.inc"
#include "nd_instantiate.h"
