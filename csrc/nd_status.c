#include "nd_status.h"

#include <string.h>

static _Thread_local nd_error nd_err;

static void nd_copy(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, src, n);
    dst[n] = 0;
}

int nd_arg_error(const char *arg, double value, const char *rule)
{
    nd_copy(nd_err.arg, sizeof nd_err.arg, arg);
    nd_copy(nd_err.rule, sizeof nd_err.rule, rule);
    nd_err.value = value;
    nd_err.has_value = 1;
    return ND_ERR_ARG;
}

int nd_arg_error_novalue(const char *arg, const char *rule)
{
    nd_arg_error(arg, 0.0, rule);
    nd_err.has_value = 0;
    return ND_ERR_ARG;
}

int nd_size_error(const char *arg)
{
    nd_arg_error_novalue(arg, "has sizes whose byte count overflows");
    return ND_ERR_OVERFLOW;
}

const nd_error *nd_last_error(void) { return &nd_err; }

void nd_clear_error(void) { memset(&nd_err, 0, sizeof nd_err); }

const char *nd_status_str(int status)
{
    switch (status) {
    case ND_OK: return "success";
    case ND_ERR_ARG: return "invalid argument";
    case ND_ERR_OVERFLOW: return "size computation overflows";
    case ND_ERR_NOMEM: return "out of memory";
    case ND_ERR_MAX_STEPS: return "maximum number of steps exceeded";
    case ND_ERR_STEP_UNDERFLOW: return "step size underflow";
    case ND_ERR_NONFINITE: return "non-finite state or derivative";
    case ND_ERR_CALLBACK: return "callback failed";
    case ND_ERR_INTERRUPTED: return "interrupted";
    case ND_ERR_UNSTABLE: return "unstable: the step is too large for the time constant";
    case ND_ERR_SINGULAR: return "singular matrix";
    default: return "unknown status";
    }
}

const char *nd_status_name(int status)
{
    switch (status) {
    case ND_OK: return "ND_OK";
    case ND_ERR_ARG: return "ND_ERR_ARG";
    case ND_ERR_OVERFLOW: return "ND_ERR_OVERFLOW";
    case ND_ERR_NOMEM: return "ND_ERR_NOMEM";
    case ND_ERR_MAX_STEPS: return "ND_ERR_MAX_STEPS";
    case ND_ERR_STEP_UNDERFLOW: return "ND_ERR_STEP_UNDERFLOW";
    case ND_ERR_NONFINITE: return "ND_ERR_NONFINITE";
    case ND_ERR_CALLBACK: return "ND_ERR_CALLBACK";
    case ND_ERR_INTERRUPTED: return "ND_ERR_INTERRUPTED";
    case ND_ERR_UNSTABLE: return "ND_ERR_UNSTABLE";
    case ND_ERR_SINGULAR: return "ND_ERR_SINGULAR";
    default: return "ND_ERR_UNKNOWN";
    }
}

const char *nd_status_key(int status)
{
    switch (status) {
    case ND_OK: return "success";
    case ND_ERR_MAX_STEPS: return "max_steps";
    case ND_ERR_STEP_UNDERFLOW: return "step_underflow";
    case ND_ERR_NONFINITE: return "nonfinite";
    case ND_ERR_CALLBACK: return "callback";
    case ND_ERR_INTERRUPTED: return "interrupted";
    case ND_ERR_UNSTABLE: return "unstable";
    case ND_ERR_SINGULAR: return "singular";
    default: return "error";
    }
}
