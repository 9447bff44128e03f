#include "nd_ode.h"
#include "nd_rk.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h> /* sysconf: the default budget of kept stages */

#include "nd_generic.h"
#include "nd_poll.h"
#include "nd_status.h"
#include "nd_vmath.h" /* ND_VECTOR_CLONES */

const char *const nd_ode_method_names[ND_ODE_METHOD_COUNT + 1] = {"euler",  "midpoint", "rk4",
                                                                  "dopri5", "tsit5",    "dop853", NULL};

const char *const nd_ode_adaptive_method_names[4] = {"dopri5", "tsit5", "dop853", NULL};

const char *nd_ode_method_name(int method)
{
    return (method >= 0 && method < ND_ODE_METHOD_COUNT) ? nd_ode_method_names[method] : NULL;
}

int nd_ode_method_adaptive(int method)
{
    return method == ND_ODE_DOPRI5 || method == ND_ODE_TSIT5 || method == ND_ODE_DOP853;
}

/* A method of the coupled solver (and of its gradients). */
static int nd_ode_coupled_method(int method)
{
    return method >= 0 && method < ND_ODE_COUPLED_METHOD_COUNT;
}

void nd_ode_opts_default(nd_ode_opts *opts)
{
    opts->method = ND_ODE_DOPRI5;
    opts->rtol = 1e-3;
    opts->atol = 1e-6;
    opts->dt = 0.0;
    opts->max_steps = 10000;
    opts->poll = NULL;
    opts->poll_ctx = NULL;
    opts->on_step = NULL;
    opts->step_ctx = NULL;
}

/* Ten vectors: the state, the candidate, a stage argument and the seven stage slopes. */
#define ND_ODE_WORK_VECTORS 10

int nd_odeint_workspace_len(int method, int64_t n, size_t *len)
{
    if (!nd_ode_coupled_method(method) || n < 0)
        return ND_ERR_ARG;
    return nd_mul_size(ND_ODE_WORK_VECTORS, (size_t)n, len) ? ND_OK : ND_ERR_OVERFLOW;
}

int nd_ode_check_opts(const nd_ode_opts *o)
{
    if (!o)
        return nd_arg_error_novalue("options", "must be given");
    ND_REQUIRE(nd_ode_method_name(o->method), "method", o->method, "is not a known method code");
    ND_REQUIRE(o->max_steps >= 1, "max_steps", o->max_steps, "must be >= 1");
    ND_REQUIRE(o->dt >= 0 && isfinite(o->dt), "dt", o->dt, "must be >= 0 and finite (0: chosen by the solver)");
    ND_REQUIRE(o->rtol >= 0 && isfinite(o->rtol), "rtol", o->rtol, "must be >= 0 and finite");
    ND_REQUIRE(o->atol >= 0 && isfinite(o->atol), "atol", o->atol, "must be >= 0 and finite");
    /* fixed-step methods never read the tolerances */
    if (nd_ode_method_adaptive(o->method) && !(o->rtol > 0 || o->atol > 0))
        return nd_arg_error_novalue("rtol and atol", "cannot both be 0");
    return ND_OK;
}

int nd_ode_check_times(int64_t nt, const double *t)
{
    ND_REQUIRE(nt >= 1 && t, "t", nt, "must hold at least one time");
    for (int64_t i = 0; i < nt; ++i)
        ND_REQUIRE(isfinite(t[i]), "t", t[i], "must be finite");
    if (nt > 1) {
        double dir = t[1] > t[0] ? 1.0 : -1.0;
        for (int64_t i = 1; i < nt; ++i)
            ND_REQUIRE((t[i] - t[i - 1]) * dir > 0, "t", t[i], "must be strictly increasing or strictly decreasing");
    }
    return ND_OK;
}

/* Validation shared by both precisions. */
static int nd_ode_check_args(int64_t n, int64_t nt, const double *t, const nd_ode_opts *o)
{
    int st = nd_ode_check_opts(o);
    if (st != ND_OK)
        return st;
    if (!nd_ode_coupled_method(o->method))
        return nd_arg_error("method", o->method, "must be euler, midpoint, rk4 or dopri5 for the coupled solver");
    ND_REQUIRE(n >= 0, "y0", n, "must have a size >= 0");
    return nd_ode_check_times(nt, t);
}

/* Substeps between two output times for a fixed-step method: round-half-away(|span| / dt),
 * at least one. Returns -1 if the count does not fit (the caller reports max_steps). */
static int64_t nd_ode_substeps(double span, double dt)
{
    if (dt <= 0)
        return 1;
    double q = round(fabs(span) / dt); /* round() rounds half away from zero */
    if (!(q < 9.0e18))
        return -1;
    return q < 1 ? 1 : (int64_t)q;
}

/* Butcher tableaux of every method, for the backward pass and rk4's stages (euler's and
 * midpoint's forward steps are spelled out, dopri5's read nd_rk.h). dopri5's are nd_rk.h's pair: 7 stages, the 7th (f at the new state, whose row
 * of a is b) serving dense output. */
typedef struct {
    int stages;
    const double *c, *b;
    const double (*a)[ND_RK_MAX];
} nd_tableau;

static const double nd_fixed_c[3][4] = {{0}, {0, 0.5}, {0, 0.5, 0.5, 1}};
static const double nd_fixed_b[3][4] = {{1}, {0, 1}, {1.0 / 6, 1.0 / 3, 1.0 / 3, 1.0 / 6}};
static const double nd_fixed_a[3][4][ND_RK_MAX] = {{{0}}, {{0}, {0.5}}, {{0}, {0.5}, {0, 0.5}, {0, 0, 1}}};

static const nd_tableau nd_tableaux[ND_ODE_COUPLED_METHOD_COUNT] = {
    [ND_ODE_EULER] = {1, nd_fixed_c[0], nd_fixed_b[0], nd_fixed_a[0]},
    [ND_ODE_MIDPOINT] = {2, nd_fixed_c[1], nd_fixed_b[1], nd_fixed_a[1]},
    [ND_ODE_RK4] = {4, nd_fixed_c[2], nd_fixed_b[2], nd_fixed_a[2]},
    [ND_ODE_DOPRI5] = {7, nd_rk_dopri5.c, nd_rk_dopri5.a[6], nd_rk_dopri5.a},
};

int nd_ode_method_stages(int method)
{
    return nd_ode_coupled_method(method) ? nd_tableaux[method].stages : 0;
}

/* Stage values Y, slopes K and their cotangents for 7 stages, and three state vectors. */
#define ND_BACKPROP_WORK_VECTORS 24

int nd_ode_backprop_workspace_len(int method, int64_t n, size_t *len)
{
    if (!nd_ode_coupled_method(method) || n < 0)
        return ND_ERR_ARG;
    return nd_mul_size(ND_BACKPROP_WORK_VECTORS, (size_t)n, len) ? ND_OK : ND_ERR_OVERFLOW;
}

int nd_ode_adjoint_workspace_len(int method, int64_t n, int64_t n_params, size_t *len)
{
    if (!nd_ode_coupled_method(method) || n < 0 || n_params < 0 || n > INT64_MAX / 4 ||
        n_params > INT64_MAX / 4)
        return ND_ERR_ARG;
    /* The augmented state z = [y, a, g], its two outputs, and the solver's workspace. */
    size_t m = 2 * (size_t)n + (size_t)n_params, ode;
    int st = nd_odeint_workspace_len(method, (int64_t)m, &ode);
    if (st != ND_OK)
        return st;
    size_t extra;
    if (!nd_mul_size(3, m, &extra) || ode > SIZE_MAX - extra)
        return ND_ERR_OVERFLOW;
    *len = ode + extra;
    return ND_OK;
}

/* ---- kept stages ------------------------------------------------------------------------ */

#define ND_KEPT_STAGES 7 /* slots of a step: the most stages of a coupled method (dopri5) */

struct nd_ode_kept {
    int method;
    int64_t n;
    size_t keep_len, itemsize, buf_bytes; /* a buffer: the stage's argument, then the kept values */
    int64_t n_steps, rows_cap;            /* rows: one per accepted step, then the attempted step's */
    int64_t n_kept;                       /* the first n_kept steps hold their stages */
    int stopped;                          /* the budget stopped keeping for the rest of the solve */
    size_t budget;                        /* bytes the buffers may take */
    void **slot;                          /* [rows_cap][ND_KEPT_STAGES] buffers, NULL until used */
    double *th;                           /* [rows_cap][2]: each accepted step's t and h */
    int64_t *outs;                        /* [rows_cap][2]: its output rows */
    void *y0;                             /* the solve's initial state */
    void *scratch;                        /* one buffer: the stages evaluated beyond the budget */
    void **bufs;                          /* every buffer, handed out in order from next_buf */
    int64_t n_bufs, bufs_cap, next_buf;
};

size_t nd_ode_kept_default_budget(void)
{
    const size_t gib = (size_t)1 << 30;
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0 && (size_t)pages / 8 < gib / (size_t)page)
        return (size_t)pages / 8 * (size_t)page;
#endif
    return gib;
}

nd_ode_kept *nd_ode_kept_new(void)
{
    nd_ode_kept *k = calloc(1, sizeof(nd_ode_kept));
    if (k)
        k->budget = nd_ode_kept_default_budget();
    return k;
}

int nd_ode_kept_budget_of(const void *kept, int64_t bytes, size_t *budget)
{
    if (!kept)
        return nd_arg_error_novalue("kept", "must not be NULL");
    if (bytes < 0)
        return nd_arg_error("kept_budget", (double)bytes, "must be >= 0");
    *budget = (uint64_t)bytes > SIZE_MAX ? SIZE_MAX : (size_t)bytes;
    return ND_OK;
}

int nd_ode_kept_set_budget(nd_ode_kept *k, int64_t bytes)
{
    return nd_ode_kept_budget_of(k, bytes, k ? &k->budget : NULL);
}

static void nd_kept_free_buffers(nd_ode_kept *k)
{
    for (int64_t i = 0; i < k->n_bufs; ++i)
        free(k->bufs[i]);
    k->n_bufs = k->next_buf = 0;
    free(k->scratch);
    k->scratch = NULL;
}

void nd_ode_kept_free(nd_ode_kept *k)
{
    if (!k)
        return;
    nd_kept_free_buffers(k);
    free(k->bufs);
    free(k->slot);
    free(k->th);
    free(k->outs);
    free(k->y0);
    free(k);
}

int64_t nd_ode_kept_steps(const nd_ode_kept *k)
{
    return k ? k->n_kept : 0;
}

int nd_ode_kept_complete(const nd_ode_kept *k)
{
    return k && k->n_kept == k->n_steps;
}

size_t nd_ode_kept_bytes(const nd_ode_kept *k)
{
    return k ? (size_t)k->n_bufs * k->buf_bytes : 0;
}

/* Room for rows [0, rows) of the step tables, new rows without buffers. */
static int nd_kept_rows(nd_ode_kept *k, int64_t rows)
{
    if (rows <= k->rows_cap)
        return ND_OK;
    const int64_t cap = rows > 2 * k->rows_cap ? rows : 2 * k->rows_cap;
    if (cap > INT64_MAX / (ND_KEPT_STAGES * 8))
        return ND_ERR_OVERFLOW;
    void **slot = realloc(k->slot, (size_t)cap * ND_KEPT_STAGES * sizeof(void *));
    if (slot)
        k->slot = slot;
    double *th = slot ? realloc(k->th, (size_t)cap * 2 * sizeof(double)) : NULL;
    if (th)
        k->th = th;
    int64_t *outs = th ? realloc(k->outs, (size_t)cap * 2 * sizeof(int64_t)) : NULL;
    if (!outs)
        return ND_ERR_NOMEM;
    k->outs = outs;
    memset(k->slot + k->rows_cap * ND_KEPT_STAGES, 0, (size_t)(cap - k->rows_cap) * ND_KEPT_STAGES * sizeof(void *));
    k->rows_cap = cap;
    return ND_OK;
}

/* Forget the steps held and set the object up for a solve of n elements; the buffers stay when
 * they have the size this solve needs. */
static int nd_kept_start(nd_ode_kept *k, int method, int64_t n, size_t keep_len, size_t itemsize, const void *y0)
{
    size_t bytes, y0_bytes;
    if (n < 0 || keep_len > SIZE_MAX - (size_t)n || !nd_mul_size((size_t)n + keep_len, itemsize, &bytes) ||
        !nd_mul_size((size_t)n, itemsize, &y0_bytes))
        return ND_ERR_OVERFLOW;
    if (!bytes)
        bytes = 1; /* malloc(0) may return NULL */
    if (bytes != k->buf_bytes || (size_t)k->n * k->itemsize != y0_bytes || k->n_bufs > (int64_t)(k->budget / bytes)) {
        nd_kept_free_buffers(k);
        free(k->y0);
        if (!(k->y0 = malloc(y0_bytes ? y0_bytes : 1)))
            return k->buf_bytes = 0, ND_ERR_NOMEM;
    }
    k->method = method, k->n = n, k->keep_len = keep_len, k->itemsize = itemsize, k->buf_bytes = bytes;
    k->n_steps = k->n_kept = k->next_buf = 0;
    k->stopped = 0;
    if (k->rows_cap)
        memset(k->slot, 0, (size_t)k->rows_cap * ND_KEPT_STAGES * sizeof(void *));
    memcpy(k->y0, y0, y0_bytes);
    return nd_kept_rows(k, 1);
}

/* The buffer of stage `stage` of the attempted step, or NULL when out of memory. */
static void *nd_kept_slot(nd_ode_kept *k, int stage)
{
    void **slot = k->slot + k->n_steps * ND_KEPT_STAGES + stage;
    if (*slot)
        return *slot;
    if (k->next_buf == k->n_bufs) {
        if (k->n_bufs == k->bufs_cap) {
            const int64_t cap = k->bufs_cap ? 2 * k->bufs_cap : 64;
            void **bufs = realloc(k->bufs, (size_t)cap * sizeof(void *));
            if (!bufs)
                return NULL;
            k->bufs = bufs, k->bufs_cap = cap;
        }
        if (!(k->bufs[k->n_bufs] = malloc(k->buf_bytes)))
            return NULL;
        k->n_bufs++;
    }
    return *slot = k->bufs[k->next_buf++];
}

/* Whether the attempted step keeps its stages: until the first step whose missing buffers would
 * take the buffers past the budget, which stops keeping for the rest of the solve (its stages then
 * go through the scratch buffer). ND_ERR_NOMEM in *st when the scratch cannot be had. */
static int nd_kept_reserve(nd_ode_kept *k, int *st)
{
    *st = ND_OK;
    if (k->stopped)
        return 0;
    int need = 0;
    const int stages = nd_ode_method_stages(k->method);
    for (int i = 0; i < stages; ++i)
        need += !k->slot[k->n_steps * ND_KEPT_STAGES + i];
    const int64_t spare = k->n_bufs - k->next_buf, more = need > spare ? need - spare : 0;
    if (k->n_bufs + more <= (int64_t)(k->budget / k->buf_bytes))
        return 1;
    k->stopped = 1;
    if (!k->scratch && !(k->scratch = malloc(k->buf_bytes)))
        *st = ND_ERR_NOMEM;
    return 0;
}

/* The attempted step was accepted: its t, h and output rows are recorded; kept, its stages are
 * held and the next attempt gets a new row, whose first stage is dopri5's last (FSAL). */
static int nd_kept_accept(nd_ode_kept *k, double t, double h, int64_t out_lo, int64_t out_hi)
{
    const int64_t s = k->n_steps;
    int st = nd_kept_rows(k, s + 2);
    if (st != ND_OK)
        return st;
    k->th[2 * s] = t, k->th[2 * s + 1] = h;
    k->outs[2 * s] = out_lo, k->outs[2 * s + 1] = out_hi;
    if (!k->stopped) {
        if (k->method == ND_ODE_DOPRI5)
            k->slot[(s + 1) * ND_KEPT_STAGES] = k->slot[s * ND_KEPT_STAGES + 6];
        k->n_kept = s + 1;
    }
    k->n_steps = s + 1;
    return ND_OK;
}

/* The object holds the stages of the solve that recorded the tape (method, size, every step's t,
 * h and output rows, the initial state), else the rule it breaks. */
static int nd_kept_matches(const nd_ode_kept *k, int method, int64_t n, size_t itemsize, const nd_ode_tape *tape)
{
    if (!k)
        return nd_arg_error_novalue("kept", "must be the kept stages of a solve");
    if (k->n_steps != tape->n_steps || k->method != method || k->n != n || k->itemsize != itemsize)
        return nd_arg_error_novalue("kept", "holds the stages of another solve (its method, state or number "
                                            "of steps differ from the tape's)");
    const int stages = nd_ode_method_stages(method);
    for (int64_t s = 0; s < k->n_steps; ++s) {
        if (k->th[2 * s] != tape->steps[4 * s + 2] || k->th[2 * s + 1] != tape->steps[4 * s + 3] ||
            k->outs[2 * s] != tape->outs[2 * s] || k->outs[2 * s + 1] != tape->outs[2 * s + 1])
            return nd_arg_error_novalue("kept", "holds the stages of another solve (its steps differ from the tape's)");
        for (int i = 0; s < k->n_kept && i < stages; ++i) /* every stage of a kept step was evaluated: a safeguard */
            if (!k->slot[s * ND_KEPT_STAGES + i])
                return nd_arg_error_novalue("kept", "misses a stage of an accepted step");
    }
    if (n && k->n_steps && memcmp(k->y0, tape->y, (size_t)n * itemsize) != 0)
        return nd_arg_error_novalue("kept", "holds the stages of another solve (its initial state differs from "
                                            "the tape's)");
    return ND_OK;
}

/* Stage `stage` of kept step s: its argument (NULL for stage 0: the tape's state) and kept values. */
static const void *nd_kept_values(const nd_ode_kept *k, int64_t s, int stage, const void **arg)
{
    const char *buf = k->slot[s * ND_KEPT_STAGES + stage];
    *arg = stage ? buf : NULL;
    return buf + (size_t)k->n * k->itemsize;
}

#define ND_IMPL "nd_ode_impl.inc"
#include "nd_instantiate.h"
