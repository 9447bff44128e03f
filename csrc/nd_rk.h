/* The explicit Runge-Kutta pairs, written once: the coupled solver (nd_ode.c, dopri5) and the
 * independent-sample driver (nd_ode_samples.c, dopri5, tsit5 and dop853) and their gradients
 * read the same coefficients. */
#ifndef ND_RK_H
#define ND_RK_H

#define ND_RK_MAX 16 /* dop853's 12 stages, the slope at the new state and 3 dense stages */

/* One explicit Runge-Kutta pair. Row s of a holds the weights of slopes 0..s-1 for stage s;
 * row stages-1 is the solution's b (its slope, at the new state, starts the next step: FSAL).
 * Rows stages..stages+extra-1 are the extra stages of the dense output. */
typedef struct {
    int stages, extra, dense_vectors;
    double acc_exp, rej_exp; /* step factor exponents on accept and on reject */
    int err_order;           /* q of Hairer's first step, h ~ (0.01 / d)^(1 / (q + 1)) */
    int hold_after_reject;   /* no growth on the step accepted right after a rejection */
    double c[ND_RK_MAX];
    double a[ND_RK_MAX][ND_RK_MAX];
    double e[ND_RK_MAX];  /* error weights: (y5 - y4) = h sum e_j k_j (dop853: the 5th-order one) */
    double e3[ND_RK_MAX]; /* dop853's 3rd-order estimator weights (others: unused) */
    /* dopri5, tsit5: the 4th-order continuous extension y(t + th h) = y + h sum_j k_j Q_j(th),
     * Q_j(th) = sum_p dense[j][p] th^(p+1); NULL for dop853, whose 7th-order one reads its
     * extra stages and nd_dop853_dense. */
    const double (*dense)[4];
} nd_rk_pair;

/* Dormand & Prince (1980), RK5(4)7M; Tsitouras (2011) 5(4); Hairer's DOP853. */
extern const nd_rk_pair nd_rk_dopri5, nd_rk_tsit5, nd_rk_dop853;
/* Shampine's continuous extension of dopri5 and Tsitouras' of tsit5 (the pairs' dense). */
extern const double nd_dopri5_dense[7][4], nd_tsit5_dense[7][4];
/* DOP853's dense coefficients 4..7: h sum_j D[p][j] k_j over its 16 stages. */
extern const double nd_dop853_dense[4][ND_RK_MAX];

#endif
