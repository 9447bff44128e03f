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
    ND_ERR_UNSTABLE = -9,       /* a fixed-step method amplifies instead of decaying (step too large) */
    ND_ERR_SINGULAR = -10       /* a matrix to factorise or solve with is singular */
} nd_status;

/* Which argument broke which rule, for the last ND_ERR_ARG / ND_ERR_OVERFLOW of a kernel on
 * this thread (as SUNDIALS' cvProcessError or GSL_ERROR report it). Kernels check their own
 * arguments and set it through nd_arg_error; the binding turns it into the exception message
 * "<arg> <rule>, got <value>", so each rule is written once, in the kernel. */
typedef struct {
    char arg[48];   /* the argument's user-facing name, "rtol", "weights[1]" */
    char rule[200]; /* what it must be, "must be >= 0" */
    double value;   /* the offending value, when has_value */
    int has_value;
} nd_error;

/* Records the detail and returns ND_ERR_ARG. */
int nd_arg_error(const char *arg, double value, const char *rule);
/* The same without a value (a shape, a pointer, a combination of arguments). */
int nd_arg_error_novalue(const char *arg, const char *rule);
/* Records the detail and returns ND_ERR_OVERFLOW ("the sizes of <arg> overflow"). */
int nd_size_error(const char *arg);
/* The detail of the last failure on this thread (arg[0] == 0 when none was recorded). */
const nd_error *nd_last_error(void);
void nd_clear_error(void);

/* Returns from the calling kernel with ND_ERR_ARG and a detail when cond does not hold. */
#define ND_REQUIRE(cond, arg, value, rule)                                                        \
    do {                                                                                          \
        if (!(cond))                                                                              \
            return nd_arg_error((arg), (double)(value), (rule));                                  \
    } while (0)

/* A short, static, human-readable description of a status code. */
const char *nd_status_str(int status);

/* The enum name of a status code ("ND_ERR_MAX_STEPS"), for programmatic use. */
const char *nd_status_name(int status);

/* A solve's status as its results name it in Python (info["status"], IntegrationError.status):
 * the enum name after ND_ERR_ in lower case ("max_steps"), "success" for ND_OK, "error" for a
 * status that is no solve's outcome (ND_ERR_ARG, _OVERFLOW, _NOMEM). */
const char *nd_status_key(int status);

#endif
