#include "nd_mlp.h"

#include <stdlib.h>
#include <string.h>

#include "nd_blas.h"
#include "nd_generic.h"
#include "nd_parallel.h"
#include "nd_status.h"
#include "nd_vmath.h"

const char *nd_act_name(int act)
{
    static const char *names[ND_ACT_COUNT] = {"identity", "tanh", "silu", "relu", "sigmoid", "softplus", "lecun_tanh"};
    return (act >= 0 && act < ND_ACT_COUNT) ? names[act] : NULL;
}

/* Spike inputs: W is worked through in blocks of ND_SPIKE_COLS columns, each copied contiguous
 * and kept in cache while every row's selected entries are summed; dW takes dY in blocks of
 * ND_SPIKE_DW_COLS columns (8000 rows of 32 floats, 1 MB, stay in L2). */
enum { ND_SPIKE_COLS = 64, ND_SPIKE_DW_COLS = 32 };

/* The bits of eight flag bytes (each 0 or 1), byte i as bit i. */
static inline __attribute__((always_inline)) unsigned nd_flag_bits8(const uint8_t *f)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t w;
    memcpy(&w, f, sizeof w);
    return (unsigned)((w * 0x0102040810204080ull) >> 56); /* one multiply gathers the eight bits */
#else
    unsigned m = 0;
    for (int b = 0; b < 8; ++b)
        m |= (unsigned)f[b] << b;
    return m;
#endif
}

/* Elements a list of positions needs beyond its count for nd_mask_positions. */
enum { ND_MASK_SLACK = 8 };

/* Writes base + the positions of the set bits of mask, ascending, to out; returns how many.
 * The first eight slots are written whatever the count (the extra ones are overwritten next or
 * lie in the list's ND_MASK_SLACK), so sparse masks take no data-dependent branch; only a mask
 * of more than eight ones loops on. always_inline: compiled with each caller's clone, whose
 * tzcnt and popcnt are single instructions. */
static inline __attribute__((always_inline)) int64_t nd_mask_positions(uint64_t mask, int32_t base, int32_t *out)
{
    const int count = __builtin_popcountll(mask);
    for (int q = 0; q < ND_MASK_SLACK; ++q) {
        out[q] = base + __builtin_ctzll(mask | (1ull << 63)); /* defined for a spent mask too */
        mask &= mask - 1;
    }
    for (int q = ND_MASK_SLACK; q < count; ++q) {
        out[q] = base + __builtin_ctzll(mask);
        mask &= mask - 1;
    }
    return count;
}

#define ND_IMPL "nd_mlp_impl.inc"
#include "nd_instantiate.h"
