/* Compiles a type-generic kernel file for float and for double:
 *
 *     #define ND_IMPL "nd_family_impl.inc"
 *     #include "nd_instantiate.h"
 *
 * See nd_generic.h for the macros the .inc file can use. */
#ifndef ND_IMPL
#error "define ND_IMPL before including nd_instantiate.h"
#endif

#define ND_T float
#define ND_SFX f32
#include ND_IMPL
#undef ND_T
#undef ND_SFX

#define ND_T double
#define ND_SFX f64
#include ND_IMPL
#undef ND_T
#undef ND_SFX

#undef ND_IMPL
