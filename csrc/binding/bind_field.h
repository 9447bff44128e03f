/* The built-in vector fields of neurodyn.fields as kernel descriptions (csrc/nd_fields.h), for
 * the ODE entry points. */
#ifndef ND_BIND_FIELD_H
#define ND_BIND_FIELD_H

#include "nd_bind.h"
#include "nd_fields.h"

/* A field read from its Python spec: the description, the converted parameter arrays it
 * points at, and its scratch once bound to a state. */
typedef struct {
    nd_field f;
    PyObject *keep; /* list of the parameter arrays */
    void *work;
} nd_bound_field;

/* spec = (kind, params, activations, constants) as neurodyn.fields builds it: kind a name of
 * nd_field_kind_names; Linear (A, b or None); Lorenz constants (sigma, rho, beta); MLP
 * (W1, b1, ..., WL, bL) with (activation, final_activation) names. The parameters are
 * converted to typenum and checked (shapes, finiteness, the kernel's nd_field_check).
 * Returns 0, or -1 with an exception set (bf is then released). */
int nd_field_parse(nd_bound_field *bf, PyObject *spec, int typenum);

/* Sizes the field for a state whose last axis is its dim (the state's other values are the
 * batch of field states) with keep_slots kept linearisations, and allocates its scratch. */
int nd_field_bind(nd_bound_field *bf, PyArrayObject *state, const char *name, int keep_slots);

void nd_field_release(nd_bound_field *bf);

#endif
