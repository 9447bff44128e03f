/* Bit tricks shared by the spike kernels: 0/1 flag bytes gathered into bits, and the
 * positions of the set bits of a mask written out without data-dependent branches. */
#ifndef ND_BITS_H
#define ND_BITS_H

#include <stdint.h>
#include <string.h>

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

#endif
