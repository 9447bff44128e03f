/* The independent-sample driver's coefficient sets and memory plan; the typed driver is in
 * nd_ode_samples_impl.inc. */
#if defined(__GNUC__) && !defined(__clang__)
/* A sample's bits must not depend on where its row sits in the batch: a contracted
 * multiply-add in a vectorised loop body but not in its scalar remainder would make them
 * depend on the row's offset (docs/models.md §8). */
#pragma GCC optimize("fp-contract=off")
#endif

#include "nd_ode_samples.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "nd_generic.h"
#include "nd_parallel.h"
#include "nd_status.h"
#include "nd_vmath.h"

/* ---- coefficient sets ---------------------------------------------------------------- */

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
} nd_rk_pair;

/* Dormand & Prince (1980), RK5(4)7M. */
static const nd_rk_pair nd_pair_dopri5 = {
    .stages = 7, .extra = 0, .dense_vectors = 5, .acc_exp = 1.0 / 5, .rej_exp = 1.0 / 4, .err_order = 4,
    .c = {0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1, 1},
    .a = {{0},
          {1.0 / 5},
          {3.0 / 40, 9.0 / 40},
          {44.0 / 45, -56.0 / 15, 32.0 / 9},
          {19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729},
          {9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656},
          {35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84}},
    .e = {71.0 / 57600, 0, -71.0 / 16695, 71.0 / 1920, -17253.0 / 339200, 22.0 / 525, -1.0 / 40},
};

/* dopri5's dense output: Shampine's continuous extension, nd_dopri5_dense of nd_ode.c. */

/* Tsitouras, "Runge-Kutta pairs of order 5(4) satisfying only the first column simplifying
 * assumption", Comput. Math. Appl. 62 (2011), Table 1 (the coefficients in double). */
static const nd_rk_pair nd_pair_tsit5 = {
    .stages = 7, .extra = 0, .dense_vectors = 5, .acc_exp = 1.0 / 5, .rej_exp = 1.0 / 4, .err_order = 4,
    .c = {0, 0.161, 0.327, 0.9, 0.9800255409045097, 1, 1},
    .a = {{0},
          {0.161},
          {-0.008480655492356989, 0.335480655492357},
          {2.8971530571054935, -6.359448489975075, 4.3622954328695815},
          {5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525},
          {5.86145544294642, -12.92096931784711, 8.159367898576159, -0.071584973281401, -0.028269050394068383},
          {0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742, -3.290069515436081,
           2.324710524099774}},
    .e = {-0.00178001105222577714, -0.0008164344596567469, 0.007880878010261995, -0.1447110071732629,
          0.5823571654525552, -0.45808210592918697, 1.0 / 66},
};

/* Tsitouras' dense output: b_j(th) = sum_p R[j][p] th^(p+1). */
static const double nd_tsit5_dense[7][4] = {
    {1.0, -2.763706197274826, 2.9132554618219126, -1.0530884977290216},
    {0, 0.13169999999999998, -0.2234, 0.1017},
    {0, 3.9302962368947516, -5.941033872131505, 2.490627285651253},
    {0, -12.411077166933676, 30.33818863028232, -16.548102889244902},
    {0, 37.50931341651104, -88.1789048947664, 47.37952196281928},
    {0, -27.896526289197286, 65.09189467479366, -34.87065786149661},
    {0, 1.5, -4.0, 2.5}};

/* Hairer's DOP853 (Hairer, Norsett & Wanner, Solving ODEs I, II.10): Dormand & Prince's
 * 8th-order method, the 5th- and 3rd-order error estimators and three extra stages for the
 * 7th-order continuous extension. */
static const nd_rk_pair nd_pair_dop853 = {
    .stages = 13, .extra = 3, .dense_vectors = 8, .acc_exp = 1.0 / 8, .rej_exp = 1.0 / 8, .err_order = 7,
    .hold_after_reject = 1,
    .c = {0.0, 0.526001519587677318785587544488e-01, 0.789002279381515978178381316732e-01,
          0.118350341907227396726757197510, 0.281649658092772603273242802490, 0.333333333333333333333333333333,
          0.25, 0.307692307692307692307692307692, 0.651282051282051282051282051282, 0.6,
          0.857142857142857142857142857142, 1.0, 1.0, 0.1, 0.2, 0.777777777777777777777777777778},
    .a = {{0},
          {5.26001519587677318785587544488e-2},
          {1.97250569845378994544595329183e-2, 5.91751709536136983633785987549e-2},
          {2.95875854768068491816892993775e-2, 0, 8.87627564304205475450678981324e-2},
          {2.41365134159266685502369798665e-1, 0, -8.84549479328286085344864962717e-1,
           9.24834003261792003115737966543e-1},
          {3.7037037037037037037037037037e-2, 0, 0, 1.70828608729473871279604482173e-1,
           1.25467687566822425016691814123e-1},
          {3.7109375e-2, 0, 0, 1.70252211019544039314978060272e-1, 6.02165389804559606850219397283e-2,
           -1.7578125e-2},
          {3.70920001185047927108779319836e-2, 0, 0, 1.70383925712239993810214054705e-1,
           1.07262030446373284651809199168e-1, -1.53194377486244017527936158236e-2,
           8.27378916381402288758473766002e-3},
          {6.24110958716075717114429577812e-1, 0, 0, -3.36089262944694129406857109825,
           -8.68219346841726006818189891453e-1, 2.75920996994467083049415600797e1,
           2.01540675504778934086186788979e1, -4.34898841810699588477366255144e1},
          {4.77662536438264365890433908527e-1, 0, 0, -2.48811461997166764192642586468,
           -5.90290826836842996371446475743e-1, 2.12300514481811942347288949897e1,
           1.52792336328824235832596922938e1, -3.32882109689848629194453265587e1,
           -2.03312017085086261358222928593e-2},
          {-9.3714243008598732571704021658e-1, 0, 0, 5.18637242884406370830023853209,
           1.09143734899672957818500254654, -8.14978701074692612513997267357,
           -1.85200656599969598641566180701e1, 2.27394870993505042818970056734e1,
           2.49360555267965238987089396762, -3.0467644718982195003823669022},
          {2.27331014751653820792359768449, 0, 0, -1.05344954667372501984066689879e1,
           -2.00087205822486249909675718444, -1.79589318631187989172765950534e1,
           2.79488845294199600508499808837e1, -2.85899827713502369474065508674,
           -8.87285693353062954433549289258, 1.23605671757943030647266201528e1,
           6.43392746015763530355970484046e-1},
          {5.42937341165687622380535766363e-2, 0, 0, 0, 0, 4.45031289275240888144113950566,
           1.89151789931450038304281599044, -5.8012039600105847814672114227, 3.1116436695781989440891606237e-1,
           -1.52160949662516078556178806805e-1, 2.01365400804030348374776537501e-1,
           4.47106157277725905176885569043e-2},
          {5.61675022830479523392909219681e-2, 0, 0, 0, 0, 0, 2.53500210216624811088794765333e-1,
           -2.46239037470802489917441475441e-1, -1.24191423263816360469010140626e-1,
           1.5329179827876569731206322685e-1, 8.20105229563468988491666602057e-3,
           7.56789766054569976138603589584e-3, -8.298e-3},
          {3.18346481635021405060768473261e-2, 0, 0, 0, 0, 2.83009096723667755288322961402e-2,
           5.35419883074385676223797384372e-2, -5.49237485713909884646569340306e-2, 0, 0,
           -1.08347328697249322858509316994e-4, 3.82571090835658412954920192323e-4,
           -3.40465008687404560802977114492e-4, 1.41312443674632500278074618366e-1},
          {-4.28896301583791923408573538692e-1, 0, 0, 0, 0, -4.69762141536116384314449447206,
           7.68342119606259904184240953878, 4.06898981839711007970213554331, 3.56727187455281109270669543021e-1,
           0, 0, 0, -1.39902416515901462129418009734e-3, 2.9475147891527723389556272149,
           -9.15095847217987001081870187138}},
    .e = {0.1312004499419488073250102996e-1, 0, 0, 0, 0, -0.1225156446376204440720569753e+1,
          -0.4957589496572501915214079952, 0.1664377182454986536961530415e+1, -0.3503288487499736816886487290,
          0.3341791187130174790297318841, 0.8192320648511571246570742613e-1, -0.2235530786388629525884427845e-1},
    /* b minus the 3rd-order weights (bhh at stages 0, 8 and 11) */
    .e3 = {5.42937341165687622380535766363e-2 - 0.244094488188976377952755905512, 0, 0, 0, 0,
           4.45031289275240888144113950566, 1.89151789931450038304281599044, -5.8012039600105847814672114227,
           3.1116436695781989440891606237e-1 - 0.733846688281611857341361741547,
           -1.52160949662516078556178806805e-1, 2.01365400804030348374776537501e-1,
           4.47106157277725905176885569043e-2 - 0.220588235294117647058823529412e-1},
};

/* DOP853's dense coefficients 4..7: h sum_j D[p][j] k_j over the 16 stages. */
static const double nd_dop853_dense[4][ND_RK_MAX] = {
    {-0.84289382761090128651353491142e+1, 0, 0, 0, 0, 0.56671495351937776962531783590,
     -0.30689499459498916912797304727e+1, 0.23846676565120698287728149680e+1, 0.21170345824450282767155149946e+1,
     -0.87139158377797299206789907490, 0.22404374302607882758541771650e+1, 0.63157877876946881815570249290,
     -0.88990336451333310820698117400e-1, 0.18148505520854727256656404962e+2, -0.91946323924783554000451984436e+1,
     -0.44360363875948939664310572000e+1},
    {0.10427508642579134603413151009e+2, 0, 0, 0, 0, 0.24228349177525818288430175319e+3,
     0.16520045171727028198505394887e+3, -0.37454675472269020279518312152e+3, -0.22113666853125306036270938578e+2,
     0.77334326684722638389603898808e+1, -0.30674084731089398182061213626e+2, -0.93321305264302278729567221706e+1,
     0.15697238121770843886131091075e+2, -0.31139403219565177677282850411e+2, -0.93529243588444783865713862664e+1,
     0.35816841486394083752465898540e+2},
    {0.19985053242002433820987653617e+2, 0, 0, 0, 0, -0.38703730874935176555105901742e+3,
     -0.18917813819516756882830838328e+3, 0.52780815920542364900561016686e+3, -0.11573902539959630126141871134e+2,
     0.68812326946963000169666922661e+1, -0.10006050966910838403183860980e+1, 0.77771377980534432092869265740,
     -0.27782057523535084065932004339e+1, -0.60196695231264120758267380846e+2, 0.84320405506677161018159903784e+2,
     0.11992291136182789328035130030e+2},
    {-0.25693933462703749003312586129e+2, 0, 0, 0, 0, -0.15418974869023643374053993627e+3,
     -0.23152937917604549567536039109e+3, 0.35763911791061412378285349910e+3, 0.93405324183624310003907691704e+2,
     -0.37458323136451633156875139351e+2, 0.10409964950896230045147246184e+3, 0.29840293426660503123344363579e+2,
     -0.43533456590011143754432175058e+2, 0.96324553959188282948394950600e+2, -0.39177261675615439165231486172e+2,
     -0.14972683625798562581422125276e+3}};

static const nd_rk_pair *nd_rk_pair_of(int method)
{
    switch (method) {
    case ND_ODE_DOPRI5: return &nd_pair_dopri5;
    case ND_ODE_TSIT5: return &nd_pair_tsit5;
    case ND_ODE_DOP853: return &nd_pair_dop853;
    default: return NULL;
    }
}

int nd_ode_samples_method(int method) { return nd_rk_pair_of(method) != NULL; }

int nd_ode_dense_vectors(int method)
{
    const nd_rk_pair *p = nd_rk_pair_of(method);
    return p ? p->dense_vectors : 0;
}

void nd_ode_samples_opts_default(nd_ode_samples_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->method = ND_ODE_DOPRI5;
    opts->rtol = 1e-3;
    opts->atol = 1e-6;
    opts->max_steps = 10000;
}

/* ---- memory plan ----------------------------------------------------------------------- */

/* Byte offsets of every array of one call in its workspace. Per-row arrays (compacted as
 * samples leave) and per-sample arrays have B entries; root problems have B * n_events. */
typedef struct {
    size_t Y, YN, YT, YC, HE, K, DN, PY, PG;             /* state type */
    size_t Q;                                            /* double: 2 B d scaled squares */
    size_t tt, hs, err, tnew, hh, t0r, tnext, fac, G0, G1; /* double */
    size_t pa, pb, pfa, pfb, proot, pg;                  /* double, per root problem */
    size_t live, rows, orows, jrows, evcount, prow, pk, pq, accr, rejr, nfevr; /* int64 */
    size_t rflag, sflag, pside, nstiff, ncalm;           /* int (the last two per sample) */
    size_t total;
} nd_samples_plan;

/* Reserves count * size bytes at *at (64-byte aligned); 0 on overflow. */
static int nd_reserve(size_t *at, size_t *off, int64_t count, size_t size)
{
    size_t bytes;
    if (count < 0 || !nd_mul_size((size_t)count, size, &bytes) || bytes > SIZE_MAX - 128 - *at)
        return 0;
    *off = *at;
    *at += (bytes + 63) & ~(size_t)63;
    return 1;
}

static int nd_samples_make_plan(const nd_rk_pair *rk, int64_t B, int64_t d, int64_t ne, size_t es,
                                nd_samples_plan *p)
{
    size_t at = 0, bd, P, Pd, Pne, Bne, slopes, dense;
    if (B < 0 || d < 0 || ne < 0 || !nd_mul_size((size_t)B, (size_t)d, &bd) || !nd_mul_size((size_t)B, (size_t)ne, &Bne) ||
        !nd_mul_size((size_t)(rk->stages + rk->extra), bd, &slopes) ||
        !nd_mul_size((size_t)rk->dense_vectors, bd, &dense) || bd > INT64_MAX || Bne > INT64_MAX)
        return 0;
    P = Bne;
    if (!nd_mul_size(P, (size_t)d, &Pd) || !nd_mul_size(P, (size_t)ne, &Pne) || Pd > INT64_MAX || Pne > INT64_MAX ||
        slopes > INT64_MAX || dense > INT64_MAX)
        return 0;
    const size_t D = sizeof(double), I = sizeof(int64_t), N = sizeof(int);
    return nd_reserve(&at, &p->Y, (int64_t)bd, es) && nd_reserve(&at, &p->YN, (int64_t)bd, es) &&
           nd_reserve(&at, &p->YT, (int64_t)bd, es) && nd_reserve(&at, &p->YC, (int64_t)bd, es) &&
           nd_reserve(&at, &p->HE, (int64_t)bd, es) &&
           nd_reserve(&at, &p->K, (int64_t)slopes, es) && nd_reserve(&at, &p->DN, (int64_t)dense, es) &&
           nd_reserve(&at, &p->PY, (int64_t)Pd, es) && nd_reserve(&at, &p->PG, (int64_t)Pne, es) &&
           bd <= INT64_MAX / 2 && nd_reserve(&at, &p->Q, 2 * (int64_t)bd, D) &&
           nd_reserve(&at, &p->tt, B, D) && nd_reserve(&at, &p->hs, B, D) && nd_reserve(&at, &p->err, B, D) &&
           nd_reserve(&at, &p->tnew, B, D) && nd_reserve(&at, &p->tnext, B, D) && nd_reserve(&at, &p->hh, B, D) &&
           nd_reserve(&at, &p->t0r, B, D) && nd_reserve(&at, &p->fac, B, D) && nd_reserve(&at, &p->accr, B, I) &&
           nd_reserve(&at, &p->rejr, B, I) && nd_reserve(&at, &p->nfevr, B, I) &&
           nd_reserve(&at, &p->G0, (int64_t)Bne, D) && nd_reserve(&at, &p->G1, (int64_t)Bne, D) &&
           nd_reserve(&at, &p->pa, (int64_t)P, D) && nd_reserve(&at, &p->pb, (int64_t)P, D) &&
           nd_reserve(&at, &p->pfa, (int64_t)P, D) && nd_reserve(&at, &p->pfb, (int64_t)P, D) &&
           nd_reserve(&at, &p->proot, (int64_t)P, D) && nd_reserve(&at, &p->pg, (int64_t)Pne, D) &&
           nd_reserve(&at, &p->live, B, I) &&
           nd_reserve(&at, &p->rows, B, I) && nd_reserve(&at, &p->orows, B, I) && nd_reserve(&at, &p->jrows, B, I) &&
           nd_reserve(&at, &p->evcount, (int64_t)Bne, I) &&
           nd_reserve(&at, &p->prow, (int64_t)P, I) && nd_reserve(&at, &p->pk, (int64_t)P, I) &&
           nd_reserve(&at, &p->pq, (int64_t)P, I) && nd_reserve(&at, &p->rflag, B, N) &&
           nd_reserve(&at, &p->sflag, B, N) && nd_reserve(&at, &p->pside, (int64_t)P, N) &&
           nd_reserve(&at, &p->nstiff, B, N) && nd_reserve(&at, &p->ncalm, B, N) &&
           ((p->total = at + 64), 1);
}

int nd_ode_samples_workspace_size(int method, int64_t B, int64_t d, int64_t n_events, size_t elem_size,
                                  size_t *bytes)
{
    const nd_rk_pair *rk = nd_rk_pair_of(method);
    if (!rk)
        return nd_arg_error("method", method, "must be dopri5, tsit5 or dop853");
    ND_REQUIRE(B >= 0, "the number of samples", B, "must be >= 0");
    ND_REQUIRE(d >= 0, "the state size", d, "must be >= 0");
    ND_REQUIRE(n_events >= 0, "n_events", n_events, "must be >= 0");
    ND_REQUIRE(elem_size == sizeof(float) || elem_size == sizeof(double), "elem_size", elem_size, "must be 4 or 8");
    nd_samples_plan p;
    if (!bytes)
        return nd_arg_error_novalue("bytes", "must not be NULL");
    if (!nd_samples_make_plan(rk, B, d, n_events, elem_size, &p))
        return nd_size_error("the samples workspace");
    *bytes = p.total;
    return ND_OK;
}

/* Argument rules shared by both precisions: the solver options' and output times' rules of
 * every solver (nd_ode_check_opts, nd_ode_check_times), then this driver's own. */
static int nd_samples_check(const nd_ode_samples_opts *o, int64_t B, int64_t d, int64_t nt, const double *t)
{
    if (!o)
        return nd_arg_error_novalue("opts", "must not be NULL");
    nd_ode_opts shared;
    nd_ode_opts_default(&shared);
    shared.method = o->method, shared.rtol = o->rtol, shared.atol = o->atol, shared.dt = o->dt;
    shared.max_steps = o->max_steps;
    int st = nd_ode_check_opts(&shared);
    if (st != ND_OK)
        return st;
    if (!nd_rk_pair_of(o->method))
        return nd_arg_error("method", o->method, "must be dopri5, tsit5 or dop853 for the per-sample driver");
    ND_REQUIRE(o->n_events >= 0, "n_events", o->n_events, "must be >= 0");
    ND_REQUIRE(B >= 0, "the number of samples", B, "must be >= 0");
    ND_REQUIRE(d >= 0, "the state size", d, "must be >= 0");
    if ((st = nd_ode_check_times(nt, t)) != ND_OK)
        return st;
    ND_REQUIRE(o->stiff_detect >= 0, "stiff_detect", o->stiff_detect, "must be >= 0");
    if (o->stiff_detect && o->method != ND_ODE_DOPRI5 && o->method != ND_ODE_TSIT5)
        return nd_arg_error("method", o->method, "must be dopri5 or tsit5 with stiffness detection");
    if (o->t_start && !o->h_start)
        return nd_arg_error_novalue("h_start", "must be given with t_start");
    const double lo = fmin(t[0], t[nt - 1]), hi = fmax(t[0], t[nt - 1]);
    for (int64_t s = 0; s < B; ++s) {
        if (o->t_start)
            ND_REQUIRE(o->t_start[s] >= lo && o->t_start[s] <= hi, "t_start", o->t_start[s],
                       "must lie between t[0] and t[-1]");
        if (o->h_start)
            ND_REQUIRE(o->h_start[s] > 0 && isfinite(o->h_start[s]), "h_start", o->h_start[s], "must be finite and > 0");
        if (o->out_start)
            ND_REQUIRE(o->out_start[s] >= 1 && o->out_start[s] <= nt, "out_start", o->out_start[s],
                       "must lie in [1, nt]");
        if (o->budget)
            ND_REQUIRE(o->budget[s] >= 0, "budget", o->budget[s], "must be >= 0");
    }
    for (int64_t k = 0; k < o->n_events; ++k) {
        if (o->direction)
            ND_REQUIRE(o->direction[k] >= -1 && o->direction[k] <= 1, "direction", o->direction[k],
                       "must be -1, 0 or 1");
        if (o->terminal)
            ND_REQUIRE(o->terminal[k] >= 0, "terminal", o->terminal[k], "must be >= 0");
        if (o->ev_c) {
            if (!o->ev_d)
                return nd_arg_error_novalue("the linear events' offsets", "must be given with their coefficients");
            ND_REQUIRE(isfinite(o->ev_d[k]), "the linear event offset", o->ev_d[k], "must be finite");
            for (int64_t i = 0; i < d; ++i)
                ND_REQUIRE(isfinite(o->ev_c[k * d + i]), "the linear event coefficient", o->ev_c[k * d + i],
                           "must be finite");
        }
    }
    return ND_OK;
}

/* Row flags of one round: accepted, the step lands on t_end, the step's extra dense stages are
 * needed (an output inside it, events or a recorded dense output), its dense coefficients too
 * (events or recorded), the sample left, an output time lies in the step. */
enum { ND_ROW_ACCEPT = 1, ND_ROW_LAST = 2, ND_ROW_DENSE = 4, ND_ROW_DONE = 8, ND_ROW_COEF = 16, ND_ROW_OUT = 32,
       ND_ROW_CHECK = 64, /* out of budget, or a step near ten ulps of its time: look closer */
       ND_ROW_STIFF = 128 /* the stiffness test stops the sample after this step */ };
/* Sample flags kept between rounds. */
enum { ND_SAMPLE_REJECTED = 1, ND_SAMPLE_NAN = 2 };

/* x^p for x in [1e-10, 1e10] and p in [-1/4, -1/8], to about 1e-8 relative (a step-size
 * heuristic needs no more, and this is a third of a full-precision power): x = 2^k m with m in
 * [sqrt(1/2), sqrt(2)) from the bits (as nd_log_pos), log m by five terms of
 * 2 atanh((m - 1) / (m + 1)), then e^z = 2^j e^r with |r| <= ln2 / 2 by eight terms. */
static inline double nd_samples_pow(double x, double p)
{
    const double ln2 = 0.69314718055994530942;
    const uint64_t u = nd_double_to_bits(x), tmp = u - 0x3FE6A09E667F3BCDull;
    const double k = nd_bits_to_double(nd_double_to_bits(ND_VMATH_SHIFTER) + ((tmp + (1023ull << 52)) >> 52)) -
                     (ND_VMATH_SHIFTER + 1023.0);
    const double m = nd_bits_to_double(u - (tmp & 0xFFF0000000000000ull));
    const double s = (m - 1.0) / (m + 1.0), s2 = s * s;
    const double lm = 2.0 * s * (1.0 + s2 * (1.0 / 3 + s2 * (1.0 / 5 + s2 * (1.0 / 7 + s2 * (1.0 / 9)))));
    const double z = p * (k * ln2 + lm);
    const double j = (z * 1.4426950408889634074 + ND_VMATH_SHIFTER) - ND_VMATH_SHIFTER, r = z - j * ln2;
    const double e = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (1.0 / 720 +
                                                                                                  r * (1.0 / 5040)))))));
    return e * nd_pow2i(j);
}

/* The step-size factor of a step with error norm err (docs/models.md §1, §8): on acceptance
 * clamp(0.9 err^-acc_exp, 0.2, 10) (10 at err = 0), on rejection max(0.2, 0.9 err^-rej_exp)
 * (0.2 for NaN). err is clamped to [1e-10, 1e10], where the clamps have taken over already. */
static inline double nd_samples_factor(double err, double acc_exp, double rej_exp)
{
    const double x = err < 1e-10 ? 1e-10 : (err > 1e10 ? 1e10 : err);
    const int accept = err <= 1.0;
    const double pw = 0.9 * nd_samples_pow(x, accept ? -acc_exp : -rej_exp);
    double f = pw < 0.2 ? 0.2 : pw;
    f = accept && f > 10.0 ? 10.0 : f;
    f = err == 0 ? 10.0 : f;
    return err != err ? 0.2 : f;
}

/* The factors of n rows: one flat loop, compiled for the machine's widest vectors (each lane
 * computes what a scalar would, so a row's factor does not depend on its place). */
ND_VECTOR_CLONES
static void nd_samples_factors(int64_t n, const double *restrict err, double acc_exp, double rej_exp,
                               double *restrict fac)
{
    for (int64_t i = 0; i < n; ++i)
        fac[i] = nd_samples_factor(err[i], acc_exp, rej_exp);
}

/* The norms of n rows from their sums of scaled squares: s5 (in err, replaced by the norm), s3
 * and the finiteness sums c (0 for finite rows). One flat loop, compiled for the widest vectors. */
ND_VECTOR_CLONES
static void nd_samples_norms(int64_t n, int two, double d, const double *restrict hs, const double *restrict s3,
                             const double *restrict c, double *restrict err)
{
    for (int64_t r = 0; r < n; ++r) {
        const double s5 = err[r];
        /* Hairer's DOP853: |h| err5^2 / sqrt(d (err5^2 + 0.01 err3^2)), the 5th-order estimate
         * damped where the 3rd-order one says it is too optimistic. */
        const double e = two ? ((s5 == 0 && s3[r] == 0) ? 0.0 : fabs(hs[r]) * s5 / sqrt(d * (s5 + 0.01 * s3[r])))
                             : sqrt(s5 / d);
        /* An infinite candidate can make its own tolerance infinite and the estimate 0. */
        err[r] = (e <= 1.0 && c[r] != 0) ? NAN : e;
    }
}

/* Rows per thread range of the elementwise loops: enough elements to pay for a thread. */
static int64_t nd_samples_grain(int64_t d) { return d >= 4096 ? 1 : 4096 / (d > 0 ? d : 1); }

/* ---- gradients ----------------------------------------------------------------------- */

/* The weights q_j of a step's dense output as one combination of its slopes,
 * y(t + th h) = y + h sum_j q_j(th) k_j (the map the forward pass evaluates through its dense
 * coefficients), for the backward pass. Returns the number of slopes. */
static int nd_rk_dense_weights(const nd_rk_pair *rk, double th, double q[ND_RK_MAX])
{
    if (rk != &nd_pair_dop853) {
        const double(*P)[4] = rk == &nd_pair_tsit5 ? nd_tsit5_dense : nd_dopri5_dense;
        for (int j = 0; j < 7; ++j)
            q[j] = th * (P[j][0] + th * (P[j][1] + th * (P[j][2] + th * P[j][3])));
        return 7;
    }
    /* y(th) = y + sum_p w_p F_p with Hairer's F0 = h sum b k, F1 = h k0 - F0,
     * F2 = 2 F0 - h (k12 + k0), F(3+p) = h sum D[p] k and w = th, th s, th^2 s, th^2 s^2,
     * th^3 s^2, th^3 s^3, th^4 s^3 (s = 1 - th). */
    const double s = 1 - th, w0 = th, w1 = th * s, w2 = th * th * s, w3 = w2 * s, w4 = w3 * th, w5 = w4 * s,
                 w6 = w5 * th, wd[4] = {w3, w4, w5, w6};
    const double *b = rk->a[rk->stages - 1];
    for (int j = 0; j < ND_RK_MAX; ++j)
        q[j] = j < rk->stages - 1 ? (w0 - w1 + 2 * w2) * b[j] : 0.0;
    q[0] += w1 - w2;
    q[rk->stages - 1] -= w2;
    for (int p = 0; p < 4; ++p)
        for (int j = 0; j < ND_RK_MAX; ++j)
            q[j] += wd[p] * nd_dop853_dense[p][j];
    return rk->stages + rk->extra;
}

int nd_ode_samples_backprop_slots(int method)
{
    const nd_rk_pair *rk = nd_rk_pair_of(method);
    return rk ? rk->stages + rk->extra : 0;
}

/* Byte offsets of the backward pass's arrays: per replayed round, S stage states, slopes and
 * slope cotangents and two cotangent rows for at most B rows; the samples' cotangents. */
typedef struct {
    size_t Ys, K, Kb, C, tmp, ycur;          /* state type */
    size_t h, t0, tnew, tt;                  /* double */
    size_t sample, seen;                     /* int64 */
    size_t total;
} nd_backprop_plan;

static int nd_backprop_make_plan(const nd_rk_pair *rk, int64_t B, int64_t d, size_t es, nd_backprop_plan *p)
{
    size_t at = 0, bd, sbd;
    const int64_t S = rk->stages + rk->extra;
    if (B < 0 || d < 0 || !nd_mul_size((size_t)B, (size_t)d, &bd) || !nd_mul_size((size_t)S, bd, &sbd) ||
        sbd > INT64_MAX)
        return 0;
    const size_t D = sizeof(double), I = sizeof(int64_t);
    return nd_reserve(&at, &p->Ys, (int64_t)sbd, es) && nd_reserve(&at, &p->K, (int64_t)sbd, es) &&
           nd_reserve(&at, &p->Kb, (int64_t)sbd, es) && nd_reserve(&at, &p->C, (int64_t)bd, es) &&
           nd_reserve(&at, &p->tmp, (int64_t)bd, es) && nd_reserve(&at, &p->ycur, (int64_t)bd, es) &&
           nd_reserve(&at, &p->h, B, D) && nd_reserve(&at, &p->t0, B, D) && nd_reserve(&at, &p->tnew, B, D) &&
           nd_reserve(&at, &p->tt, B, D) && nd_reserve(&at, &p->sample, B, I) && nd_reserve(&at, &p->seen, B, I) &&
           ((p->total = at + 64), 1);
}

/* The adjoint's arrays: the driver's workspace for [y, a] rows of 2d, the state and the
 * interval's outputs, the split rows of the augmented right-hand side, the interval's counters. */
typedef struct {
    size_t drv, z, zs, zl, ys, as, f, ao; /* driver bytes, then state type */
    size_t nfev, acc, rej, nout, t, status;
    size_t total;
} nd_adjoint_plan;

static int nd_adjoint_make_plan(int method, int64_t B, int64_t d, size_t es, nd_adjoint_plan *p)
{
    size_t at = 0, bd, drv;
    if (B < 0 || d < 0 || d > INT64_MAX / 4 || !nd_mul_size((size_t)B, (size_t)d, &bd) || bd > INT64_MAX / 4 ||
        nd_ode_samples_workspace_size(method, B, 2 * d, 0, es, &drv) != ND_OK)
        return 0;
    const int64_t bd2 = 2 * (int64_t)bd;
    return nd_reserve(&at, &p->drv, (int64_t)drv, 1) && nd_reserve(&at, &p->z, bd2, es) &&
           nd_reserve(&at, &p->zs, 2 * bd2, es) && nd_reserve(&at, &p->zl, bd2, es) &&
           nd_reserve(&at, &p->ys, (int64_t)bd, es) && nd_reserve(&at, &p->as, (int64_t)bd, es) &&
           nd_reserve(&at, &p->f, (int64_t)bd, es) && nd_reserve(&at, &p->ao, (int64_t)bd, es) &&
           nd_reserve(&at, &p->nfev, B, sizeof(int64_t)) && nd_reserve(&at, &p->acc, B, sizeof(int64_t)) &&
           nd_reserve(&at, &p->rej, B, sizeof(int64_t)) && nd_reserve(&at, &p->nout, B, sizeof(int64_t)) &&
           nd_reserve(&at, &p->t, B, sizeof(double)) && nd_reserve(&at, &p->status, B, sizeof(int)) &&
           ((p->total = at + 64), 1);
}

int nd_ode_samples_backprop_workspace_size(int method, int64_t B, int64_t d, size_t elem_size, size_t *bytes)
{
    const nd_rk_pair *rk = nd_rk_pair_of(method);
    if (!rk)
        return nd_arg_error("method", method, "must be dopri5, tsit5 or dop853");
    ND_REQUIRE(B >= 0, "the number of samples", B, "must be >= 0");
    ND_REQUIRE(d >= 0, "the state size", d, "must be >= 0");
    ND_REQUIRE(elem_size == sizeof(float) || elem_size == sizeof(double), "elem_size", elem_size, "must be 4 or 8");
    if (!bytes)
        return nd_arg_error_novalue("bytes", "must not be NULL");
    nd_backprop_plan p;
    if (!nd_backprop_make_plan(rk, B, d, elem_size, &p))
        return nd_size_error("the backprop workspace");
    *bytes = p.total;
    return ND_OK;
}

int nd_ode_samples_adjoint_workspace_size(int method, int64_t B, int64_t d, size_t elem_size, size_t *bytes)
{
    int st = nd_ode_samples_workspace_size(method, B, d, 0, elem_size, bytes);
    if (st != ND_OK)
        return st;
    nd_adjoint_plan p;
    if (!nd_adjoint_make_plan(method, B, d, elem_size, &p))
        return nd_size_error("the adjoint workspace");
    *bytes = p.total;
    return ND_OK;
}

#define ND_IMPL "nd_ode_samples_impl.inc"
#include "nd_instantiate.h"

#define ND_IMPL "nd_ode_samples_grad_impl.inc"
#include "nd_instantiate.h"
