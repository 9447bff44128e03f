"""Pure-NumPy twins of the chaos family (docs/models.md §12): the catalogue's right-hand sides
written from their published equations (the pendulum from its Lagrangian, by solving the 2 x 2
mass-matrix system rather than the closed form the kernels use), the Hénon map, and the QR
method on the variational equations, vectorised over a batch of initial states. float64.
"""
import numpy as np


def rossler(t, y, a=0.2, b=0.2, c=5.7):
    x, v, z = np.moveaxis(y, -1, 0)
    return np.stack([-v - z, x + a * v, b + z * (x - c)], axis=-1)


def chen(t, y, a=35.0, b=3.0, c=28.0):
    x, v, z = np.moveaxis(y, -1, 0)
    return np.stack([a * (v - x), (c - a) * x - x * z + c * v, x * v - b * z], axis=-1)


def chua(t, y, alpha=15.6, beta=28.0, m0=-8 / 7, m1=-5 / 7):
    x, v, z = np.moveaxis(y, -1, 0)
    # the diode: slope m0 on [-1, 1], m1 outside, continuous
    h = np.where(np.abs(x) <= 1, m0 * x, m1 * x + np.sign(x) * (m0 - m1))
    return np.stack([alpha * (v - x - h), x - v + z, -beta * v], axis=-1)


def thomas(t, y, b=0.208186):
    return np.sin(np.roll(y, -1, axis=-1)) - b * y


def sprott_b(t, y, a=1.0, b=1.0, c=1.0):
    x, v, z = np.moveaxis(y, -1, 0)
    return np.stack([a * v * z, x - b * v, c - x * v], axis=-1)


def lorenz96(t, y, F=8.0):
    return (np.roll(y, -1, axis=-1) - np.roll(y, 2, axis=-1)) * np.roll(y, 1, axis=-1) - y + F


def henon_heiles(t, y, lam=1.0):
    x, v, px, py = np.moveaxis(y, -1, 0)
    return np.stack([px, py, -x - 2 * lam * x * v, -v - lam * (x ** 2 - v ** 2)], axis=-1)


def double_pendulum(t, y, m1=1.0, m2=1.0, l1=1.0, l2=1.0, g=9.81):
    """Euler-Lagrange equations M(th) w' = r(th, w), solved per state."""
    th1, th2, w1, w2 = np.moveaxis(y, -1, 0)
    d = th1 - th2
    M = np.empty(th1.shape + (2, 2))
    M[..., 0, 0] = (m1 + m2) * l1
    M[..., 0, 1] = m2 * l2 * np.cos(d)
    M[..., 1, 0] = l1 * np.cos(d)
    M[..., 1, 1] = l2
    r = np.stack([-m2 * l2 * w2 ** 2 * np.sin(d) - (m1 + m2) * g * np.sin(th1),
                  l1 * w1 ** 2 * np.sin(d) - g * np.sin(th2)], axis=-1)
    acc = np.linalg.solve(M, r[..., None])[..., 0]
    return np.concatenate([np.stack([w1, w2], axis=-1), acc], axis=-1)


def duffing(t, y, delta=0.3, alpha=-1.0, beta=1.0, gamma=0.5, omega=1.2):
    """t is a float or an array broadcasting against y's leading axes."""
    x, v = np.moveaxis(y, -1, 0)
    return np.stack([v, -delta * v - alpha * x - beta * x ** 3 + gamma * np.cos(omega * np.asarray(t))], axis=-1)


def lorenz(t, y, sigma=10.0, rho=28.0, beta=8 / 3):
    x, v, z = np.moveaxis(y, -1, 0)
    return np.stack([sigma * (v - x), x * (rho - z) - v, x * v - beta * z], axis=-1)


#: name -> (NumPy right-hand side, state size), the catalogue's systems by their C names.
FLOWS = {"rossler": (rossler, 3), "chen": (chen, 3), "chua": (chua, 3), "thomas": (thomas, 3),
         "sprott_b": (sprott_b, 3), "lorenz96": (lorenz96, 40), "henon_heiles": (henon_heiles, 4),
         "double_pendulum": (double_pendulum, 4), "duffing": (duffing, 2)}


def henon(x, a=1.4, b=0.3):
    return np.stack([1 - a * x[..., 0] ** 2 + x[..., 1], b * x[..., 0]], axis=-1)


def henon_jac(x, a=1.4, b=0.3):
    J = np.zeros(x.shape + (2,))
    J[..., 0, 0] = -2 * a * x[..., 0]
    J[..., 0, 1] = 1
    J[..., 1, 0] = b
    return J


def fd_jacobian(f, t, y, h=1e-6):
    """Central differences of f(t, y) over the last axis: y.shape + (n,)."""
    y = np.asarray(y, dtype=np.float64)
    n = y.shape[-1]
    J = np.empty(y.shape + (n,))
    for c in range(n):
        e = np.zeros(n)
        e[c] = h
        J[..., c] = (f(t, y + e) - f(t, y - e)) / (2 * h)
    return J


def qr_spectrum(f, jac, y0, dt, n_transient, n_steps, k=None):
    """The QR method with RK4 on (y, V), vectorised over the batch y0 [B, n]: the exponents
    [B, k] and the time-averaged divergence [B] (the same quadrature). NumPy's Householder QR
    (np.linalg.qr on the stacked tangent matrices) re-orthonormalises after every step."""
    y = np.array(y0, dtype=np.float64)
    B, n = y.shape
    k = n if k is None else k
    V = np.broadcast_to(np.eye(n)[:, :k], (B, n, k)).copy()  # columns are tangent vectors
    logs, div, t = np.zeros((B, k)), np.zeros(B), 0.0
    for step in range(n_transient + n_steps):
        acc = step >= n_transient
        ky = f(t, y)
        J = jac(t, y)
        kV = J @ V
        sy, sV, tr = ky.copy(), kV.copy(), np.trace(J, axis1=1, axis2=2)
        for c, w in ((0.5, 2.0), (0.5, 2.0), (1.0, 1.0)):
            ys, Vs = y + c * dt * ky, V + c * dt * kV
            ky = f(t + c * dt, ys)
            J = jac(t + c * dt, ys)
            kV = J @ Vs
            sy += w * ky
            sV += w * kV
            tr += w * np.trace(J, axis1=1, axis2=2)
        y = y + dt / 6 * sy
        V = V + dt / 6 * sV
        t += dt
        Q, R = np.linalg.qr(V)
        V = Q
        if acc:
            logs += np.log(np.abs(np.diagonal(R, axis1=1, axis2=2)))
            div += dt / 6 * tr
    T = n_steps * dt
    return logs / T, div / T


def lorenz_jac(t, y, sigma=10.0, rho=28.0, beta=8 / 3):
    x, v, z = np.moveaxis(y, -1, 0)
    J = np.zeros(y.shape + (3,))
    J[..., 0, 0], J[..., 0, 1] = -sigma, sigma
    J[..., 1, 0], J[..., 1, 1], J[..., 1, 2] = rho - z, -1, -x
    J[..., 2, 0], J[..., 2, 1], J[..., 2, 2] = v, x, -beta
    return J


def qr_spectrum_map(g, jac, x0, n_transient, n_iter):
    """The QR method on a map, vectorised over the batch x0 [B, n]: exponents [B, n] per
    iteration, sorted largest first."""
    x = np.array(x0, dtype=np.float64)
    B, n = x.shape
    V = np.broadcast_to(np.eye(n), (B, n, n)).copy()
    logs = np.zeros((B, n))
    for it in range(n_transient + n_iter):
        V = jac(x) @ V
        x = g(x)
        Q, R = np.linalg.qr(V)
        V = Q
        if it >= n_transient:
            logs += np.log(np.abs(np.diagonal(R, axis1=1, axis2=2)))
    return -np.sort(-logs / n_iter, axis=1)


def kaplan_yorke(lam):
    """D_KY of one spectrum, by its definition, in a loop."""
    lam = sorted((float(v) for v in lam), reverse=True)
    if lam[0] < 0:
        return 0.0
    s = 0.0
    for j, v in enumerate(lam):
        if s + v < 0:
            return j + s / abs(v)
        s += v
    return float(len(lam))
