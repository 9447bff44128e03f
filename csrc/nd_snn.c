#include "nd_snn.h"

#include <math.h>

#include "nd_bits.h"
#include "nd_generic.h"
#include "nd_parallel.h"
#include "nd_status.h"
#include "nd_vmath.h"

enum { ND_LIF_CHUNK = 256 }; /* neurons a kernel walks through every step at a time */

/* Sets bit pos of a packed spike raster whose byte another thread may be setting too. */
static inline void nd_spike_bit_set_shared(uint8_t *bits, int64_t pos)
{
    __atomic_fetch_or(&bits[pos >> 3], (uint8_t)(1u << (pos & 7)), __ATOMIC_RELAXED);
}

void nd_lif_params_default(nd_lif_params *p)
{
    p->beta = 0.60653065971263342; /* exp(-1/2): tau 2 */
    p->threshold = 1.0;
    p->reset = ND_RESET_SUBTRACT;
    p->reset_delay = 0;
    p->surrogate = ND_SURROGATE_SIGMOID;
    p->slope = 10.0;
    p->detach_reset = 1;
    p->smooth = 0;
}

int nd_spike_bits_size(int64_t T, int64_t B, int64_t n, size_t *bytes)
{
    size_t count;
    if (T < 0 || B < 0 || n < 0 || !nd_mul3_size((size_t)T, (size_t)B, (size_t)n, &count))
        return ND_ERR_OVERFLOW;
    *bytes = count / 8 + (count % 8 != 0);
    return ND_OK;
}

static int nd_lif_check(const nd_lif_params *p, int64_t T, int64_t B, int64_t n)
{
    if (!p || T < 0 || B < 0 || n < 0 || !isfinite(p->beta) || !isfinite(p->threshold) || p->beta < 0 ||
        !(p->threshold > 0) || (p->reset != ND_RESET_SUBTRACT && p->reset != ND_RESET_ZERO) ||
        p->surrogate < 0 || p->surrogate > ND_SURROGATE_ATAN || !(p->slope > 0) || !isfinite(p->slope))
        return ND_ERR_ARG;
    size_t count;
    return nd_mul3_size((size_t)T, (size_t)B, (size_t)n, &count) ? ND_OK : ND_ERR_OVERFLOW;
}

#define ND_IMPL "nd_snn_impl.inc"
#include "nd_instantiate.h"
