/* One source for float32 and float64.
 *
 * A kernel family keeps its type-generic code in nd_<family>_impl.inc and its .c file
 * compiles it for both types through nd_instantiate.h:
 *
 *     #define ND_IMPL "nd_family_impl.inc"
 *     #include "nd_instantiate.h"
 *
 * Inside the .inc, ND_FN(name) names the typed function (name_f32 / name_f64), ND_GEMM the
 * matching CBLAS product, and <tgmath.h> makes exp, tanh, fabs ... follow ND_T.
 *
 * Definitions spell both generated names, ND_TYPED(name_f32, name_f64), so that `git grep
 * name_f32` finds where a typed function is defined; calls inside a body use ND_FN(name). */
#ifndef ND_GENERIC_H
#define ND_GENERIC_H

#include <stddef.h>
#include <stdint.h>

#define ND_CAT_(a, b) a##_##b
#define ND_CAT(a, b) ND_CAT_(a, b)

/* Overflow-checked size products: return 0 and leave *out untouched on overflow. */
static inline int nd_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return 0;
    *out = a * b;
    return 1;
}

static inline int nd_mul3_size(size_t a, size_t b, size_t c, size_t *out)
{
    size_t ab;
    return nd_mul_size(a, b, &ab) && nd_mul_size(ab, c, out);
}

/* One part of a workspace plan: count * size bytes at *at (the running total, kept 64-byte
 * aligned), its offset in *off. 0 on overflow. */
static inline int nd_work_part(size_t *at, size_t *off, size_t count, size_t size)
{
    size_t bytes;
    if (!nd_mul_size(count, size, &bytes) || bytes > SIZE_MAX - 128 - *at)
        return 0;
    *off = *at;
    *at += (bytes + 63) & ~(size_t)63;
    return 1;
}

/* A 64-byte vector of float or double (16 or 8 lanes), a gcc/clang vector type that each vector
 * clone (ND_VECTOR_CLONES) maps to its widest registers: for sums the auto-vectoriser will not
 * keep in registers. Inside an .inc, ND_FN(nd_vec64); loads and stores go through memcpy, so no
 * alignment is assumed. */
typedef float nd_vec64_f32 __attribute__((vector_size(64)));
typedef double nd_vec64_f64 __attribute__((vector_size(64)));

/* ND_TYPED's selectors, by ND_SFX. */
#define ND_PICK_f32(name_f32, name_f64) name_f32
#define ND_PICK_f64(name_f32, name_f64) name_f64

#endif

/* Per-instantiation macros: (re)defined every time an .inc is included. */
#ifdef ND_SFX
#undef ND_FN
#undef ND_GEMM
#undef ND_GEMM_SEEDED
#undef ND_TYPED
#define ND_FN(name) ND_CAT(name, ND_SFX)
#define ND_TYPED(name_f32, name_f64) ND_CAT(ND_PICK, ND_SFX)(name_f32, name_f64)
#define ND_GEMM ND_FN(nd_gemm)
#define ND_GEMM_SEEDED ND_FN(nd_gemm_seeded)
#endif
