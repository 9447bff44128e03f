/* A minimal unit-test harness for the C kernels: CHECK records a failure and goes on;
 * ND_TEST_MAIN runs the listed tests and prints "N passed, N failed". */
#ifndef ND_TEST_H
#define ND_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>

static int nd_test_failures = 0;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);    \
            nd_test_failures++;                                                        \
        }                                                                              \
    } while (0)

#define CHECK_CLOSE(a, b, tol)                                                                    \
    do {                                                                                          \
        double a_ = (double)(a), b_ = (double)(b);                                                \
        if (!(fabs(a_ - b_) <= (tol))) {                                                          \
            fprintf(stderr, "%s:%d: %s = %.17g, expected %.17g (tol %g)\n", __FILE__, __LINE__, #a, \
                    a_, b_, (double)(tol));                                                       \
            nd_test_failures++;                                                                   \
        }                                                                                         \
    } while (0)

/* Deterministic uniform numbers in [lo, hi) for test data (xorshift64; no libc state). */
static uint64_t nd_test_rng = 0x9E3779B97F4A7C15ull;

static inline double nd_test_uniform(double lo, double hi)
{
    nd_test_rng ^= nd_test_rng << 13;
    nd_test_rng ^= nd_test_rng >> 7;
    nd_test_rng ^= nd_test_rng << 17;
    return lo + (hi - lo) * (double)(nd_test_rng >> 11) / 9007199254740992.0;
}

static inline void nd_test_fill(double *v, int n, double lo, double hi)
{
    for (int i = 0; i < n; ++i)
        v[i] = nd_test_uniform(lo, hi);
}

/* Largest relative disagreement between an analytic gradient `grad` and central differences
 * of loss() with step h, perturbing each of the n entries of p in turn; `floor` bounds the
 * denominator so entries near zero are compared absolutely. (h = 1e-6 in double: truncation
 * ~1e-12 and rounding ~1e-9 relative, well under the 1e-6 bar of the tests.) */
static inline double nd_test_fd_error(double (*loss)(void), double *p, const double *grad, int n, double h,
                                      double floor)
{
    double worst = 0;
    for (int i = 0; i < n; ++i) {
        double keep = p[i];
        p[i] = keep + h;
        double lp = loss();
        p[i] = keep - h;
        double lm = loss();
        p[i] = keep;
        double fd = (lp - lm) / (2 * h);
        double err = fabs(fd - grad[i]) / fmax(floor, fabs(fd));
        worst = err > worst ? err : worst;
    }
    return worst;
}

typedef void (*nd_test_fn)(void);

static int nd_test_run(const char *const *names, const nd_test_fn *fns, int count)
{
    int passed = 0, failed = 0;
    for (int i = 0; i < count; ++i) {
        int before = nd_test_failures;
        fns[i]();
        if (nd_test_failures == before) {
            passed++;
        } else {
            failed++;
            fprintf(stderr, "FAILED %s\n", names[i]);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#define ND_TEST_MAIN(...)                                                   \
    int main(void)                                                          \
    {                                                                       \
        const nd_test_fn fns[] = {__VA_ARGS__};                             \
        const char *names_ = #__VA_ARGS__;                                  \
        const char *names[sizeof fns / sizeof fns[0]];                      \
        static char buf[4096];                                              \
        snprintf(buf, sizeof buf, "%s", names_);                            \
        int k = 0;                                                          \
        for (char *tok = buf; k < (int)(sizeof fns / sizeof fns[0]); ++k) { \
            while (*tok == ' ' || *tok == ',') ++tok;                       \
            names[k] = tok;                                                 \
            char *comma = tok;                                              \
            while (*comma && *comma != ',') ++comma;                        \
            if (*comma) *comma++ = '\0';                                    \
            tok = comma;                                                    \
        }                                                                   \
        return nd_test_run(names, fns, k);                                  \
    }

#endif
