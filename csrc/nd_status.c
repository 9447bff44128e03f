#include "nd_status.h"

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
    default: return "ND_ERR_UNKNOWN";
    }
}
