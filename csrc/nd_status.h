/* Status codes shared by every neurodyn kernel: 0 is success, negative is an error. */
#ifndef ND_STATUS_H
#define ND_STATUS_H

typedef enum {
    ND_OK = 0,
    ND_ERR_ARG = -1,            /* an argument is out of its documented range */
    ND_ERR_OVERFLOW = -2,       /* a size computation would overflow */
    ND_ERR_NOMEM = -3,          /* an allocation failed */
    ND_ERR_MAX_STEPS = -4,      /* the solver used its step budget before the end time */
    ND_ERR_STEP_UNDERFLOW = -5, /* the adaptive step became too small to advance time */
    ND_ERR_NONFINITE = -6,      /* the state or its derivative became NaN or inf */
    ND_ERR_CALLBACK = -7,       /* a user callback reported failure */
    ND_ERR_INTERRUPTED = -8,    /* the poll callback asked the kernel to stop */
    ND_ERR_UNSTABLE = -9        /* a fixed-step method amplifies instead of decaying (step too large) */
} nd_status;

/* A short, static, human-readable description of a status code. */
const char *nd_status_str(int status);

/* The enum name of a status code ("ND_ERR_MAX_STEPS"), for programmatic use. */
const char *nd_status_name(int status);

#endif
