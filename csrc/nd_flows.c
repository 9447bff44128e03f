#include "nd_flows.h"

#include <math.h>

#include "nd_fields.h"
#include "nd_generic.h"
#include "nd_status.h"

const char *const nd_flow_names[ND_FLOW_COUNT + 1] = {"rossler",  "chen",         "chua",
                                                      "thomas",   "sprott_b",     "lorenz96",
                                                      "henon_heiles", "double_pendulum", "duffing", NULL};

static const int nd_flow_nparams[ND_FLOW_COUNT] = {3, 3, 4, 1, 3, 1, 1, 5, 5};
static const int64_t nd_flow_dims[ND_FLOW_COUNT] = {3, 3, 3, 3, 3, 0, 4, 4, 2};

int nd_flow_param_count(int system)
{
    return system >= 0 && system < ND_FLOW_COUNT ? nd_flow_nparams[system] : 0;
}

int64_t nd_flow_dim(int system)
{
    return system >= 0 && system < ND_FLOW_COUNT ? nd_flow_dims[system] : -1;
}

int nd_flow_check(int system, int64_t dim, const double *p)
{
    ND_REQUIRE(system >= 0 && system < ND_FLOW_COUNT, "the flow", system, "is not a system of the catalogue");
    if (ND_FIELD_FLOW_PARAMS < nd_flow_nparams[system])
        return nd_arg_error_novalue("the flow", "has more parameters than a field holds");
    if (system == ND_FLOW_LORENZ96)
        ND_REQUIRE(dim >= 4, "N", dim, "must be >= 4 for Lorenz-96");
    else if (dim != nd_flow_dims[system]) {
        static const char *rules[5] = {"", "", "must be 2 for this flow", "must be 3 for this flow",
                                       "must be 4 for this flow"};
        return nd_arg_error("the state size", (double)dim, rules[nd_flow_dims[system]]);
    }
    static const char *const names[ND_FLOW_COUNT][5] = {
        {"a", "b", "c"},     {"a", "b", "c"},  {"alpha", "beta", "m0", "m1"},     {"b"},
        {"a", "b", "c"},     {"F"},            {"lam"},
        {"m1", "m2", "l1", "l2", "g"},         {"delta", "alpha", "beta", "gamma", "omega"}};
    for (int k = 0; k < nd_flow_nparams[system]; ++k)
        ND_REQUIRE(isfinite(p[k]), names[system][k], p[k], "must be finite");
    if (system == ND_FLOW_DOUBLE_PENDULUM)
        for (int k = 0; k < 4; ++k)
            ND_REQUIRE(p[k] > 0, names[system][k], p[k], "must be > 0");
    return ND_OK;
}

#define ND_IMPL "nd_flows_impl.inc"
#include "nd_instantiate.h"
