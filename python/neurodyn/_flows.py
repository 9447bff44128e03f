"""The catalogue of chaotic flows, built-in fields of kind ``"flow"`` (csrc/nd_flows.h).

Each flow is evaluated in C with an analytic Jacobian, so :func:`neurodyn.odeint` (explicit and
implicit methods, per sample or coupled) and :func:`neurodyn.lyapunov_spectrum` take it like any
built-in field. Every class carries its standard parameters as defaults, a reference initial
condition :attr:`~Flow.y0_ref` (on or near the attractor) and, where published, reference Lyapunov
exponents :attr:`~Flow.reference_exponents`. The equations are in docs/models.md §12.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from . import _core
from .fields import Field

#: The systems of the catalogue, by name (the kernels' table).
SYSTEMS = _core.TABLES["flow_systems"]


class Flow(Field):
    """Base of the catalogue's flows: ``system`` names the C system, ``param_names`` its
    parameters in the kernel's order.

    Attributes
    ----------
    y0_ref : tuple of float
        A reference initial condition (for Lorenz-96, see :meth:`Lorenz96.reference_state`).
    reference_exponents : tuple of float or None
        Published Lyapunov exponents at the default parameters, largest first, or None.
    """

    kind = "flow"
    system: str
    param_names: tuple = ()
    y0_ref: tuple = ()
    reference_exponents: tuple | None = None

    def _set(self, dim, **params):
        # the kernel checks finiteness and ranges (nd_flow_check); the floats are stored after
        for name, value in params.items():
            setattr(self, name, value)
        self._dim = dim
        self._check()
        for name, value in params.items():
            setattr(self, name, float(value))

    def _spec(self):
        return (self.kind, (), (self.system,), (self._dim,) + tuple(getattr(self, p) for p in self.param_names))

    def __repr__(self):
        args = ", ".join(f"{p}={getattr(self, p)!r}" for p in self.param_names)
        return f"{type(self).__name__}({args})"


class Rossler(Flow):
    """Rössler's flow (1976): ``x' = -y - z``, ``y' = x + a y``, ``z' = b + z (x - c)``.

    Parameters
    ----------
    a, b, c : float
        Defaults 0.2, 0.2, 5.7, the standard chaotic attractor.

    Examples
    --------
    >>> import neurodyn as nd
    >>> nd.fields.Rossler()(0.0, [1.0, 1.0, 1.0]).tolist()
    [-2.0, 1.2, -4.5]
    """

    system = "rossler"
    param_names = ("a", "b", "c")
    y0_ref = (-9.0, 0.0, 0.0)
    reference_exponents = (0.0714, 0.0, -5.3942)

    def __init__(self, a: float = 0.2, b: float = 0.2, c: float = 5.7) -> None:
        self._set(3, a=a, b=b, c=c)


class Chen(Flow):
    """Chen's flow (Chen & Ueta 1999): ``x' = a (y - x)``, ``y' = (c - a) x - x z + c y``,
    ``z' = x y - b z``.

    Parameters
    ----------
    a, b, c : float
        Defaults 35, 3, 28.
    """

    system = "chen"
    param_names = ("a", "b", "c")
    y0_ref = (-10.0, 0.0, 37.0)
    reference_exponents = (2.0272, 0.0, -12.0272)

    def __init__(self, a: float = 35.0, b: float = 3.0, c: float = 28.0) -> None:
        self._set(3, a=a, b=b, c=c)


class Chua(Flow):
    """Chua's circuit with its piecewise-linear diode (the double scroll):
    ``x' = alpha (y - x - h(x))``, ``y' = x - y + z``, ``z' = -beta y``, with
    ``h(x) = m1 x + (m0 - m1) (|x + 1| - |x - 1|) / 2``.

    The Jacobian is piecewise constant in ``x`` (slope ``m0`` for ``|x| < 1``, ``m1`` outside);
    at the two kinks the outer slope is taken.

    Parameters
    ----------
    alpha, beta, m0, m1 : float
        Defaults 15.6, 28, -8/7, -5/7 (Chua, Komuro & Matsumoto 1986, the double scroll).
    """

    system = "chua"
    param_names = ("alpha", "beta", "m0", "m1")
    y0_ref = (0.7, 0.0, 0.0)

    def __init__(self, alpha: float = 15.6, beta: float = 28.0, m0: float = -8.0 / 7.0, m1: float = -5.0 / 7.0) -> None:
        self._set(3, alpha=alpha, beta=beta, m0=m0, m1=m1)


class Thomas(Flow):
    """Thomas' cyclically symmetric flow (1999): ``x' = sin y - b x``, ``y' = sin z - b y``,
    ``z' = sin x - b z``.

    Parameters
    ----------
    b : float
        Default 0.208186 (the chaotic regime; the divergence is ``-3 b`` everywhere).
    """

    system = "thomas"
    param_names = ("b",)
    y0_ref = (0.1, 0.0, 0.0)
    # None: the often-quoted (0.0349, 0, -0.5749) belongs to b = 0.18 (this QR method gives
    # 0.0350, 0, -0.5750 there); at b = 0.208186 it gives about (0.0051, 0, -0.6294), sum -3 b
    reference_exponents = None

    def __init__(self, b: float = 0.208186) -> None:
        self._set(3, b=b)


class SprottB(Flow):
    """Sprott's case B (1994): ``x' = a y z``, ``y' = x - b y``, ``z' = c - x y``.

    Parameters
    ----------
    a, b, c : float
        Defaults 1, 1, 1 (Sprott's system; the divergence is ``-b``).
    """

    system = "sprott_b"
    param_names = ("a", "b", "c")
    y0_ref = (0.05, 0.05, 0.05)
    reference_exponents = (0.2101, 0.0, -1.2101)

    def __init__(self, a: float = 1.0, b: float = 1.0, c: float = 1.0) -> None:
        self._set(3, a=a, b=b, c=c)


class Lorenz96(Flow):
    """Lorenz's 1996 model on a ring of ``N`` sites:
    ``x_i' = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + F`` (indices mod ``N``).

    Parameters
    ----------
    N : int
        Sites, >= 4 (default 40).
    F : float
        Forcing (default 8; chaotic for F above about 5 at N = 40). The divergence is ``-N``.

    Examples
    --------
    >>> import neurodyn as nd
    >>> nd.fields.Lorenz96(N=5).reference_state().shape
    (5,)
    """

    system = "lorenz96"
    param_names = ("F",)
    F: float
    #: The leading exponent at N = 40, F = 8 (the others depend on N).
    reference_exponents = (1.68,)

    def __init__(self, N: int = 40, F: float = 8.0) -> None:
        self.N = N
        self._set(N, F=F)
        self.N = int(N)
        self.y0_ref = tuple(self.reference_state().tolist())

    def reference_state(self) -> np.ndarray:
        """The rest state ``x_i = F`` with the first site nudged by 0.01."""
        x = np.full(self.dim, self.F)
        x[0] += 0.01
        return x

    def __repr__(self):
        return f"Lorenz96(N={self.N}, F={self.F!r})"


class HenonHeiles(Flow):
    """The Hénon–Heiles system (1964), a Hamiltonian flow on ``(x, y, px, py)`` with
    ``H = (px^2 + py^2) / 2 + (x^2 + y^2) / 2 + lam (x^2 y - y^3 / 3)``:
    ``x' = px``, ``y' = py``, ``px' = -x - 2 lam x y``, ``py' = -y - lam (x^2 - y^2)``.

    Conservative: its exponents come in pairs ``(l, 0, 0, -l)`` and sum to 0.

    Parameters
    ----------
    lam : float
        Default 1.

    Attributes
    ----------
    y0_ref
        A chaotic orbit at energy 1/8 (``x = 0, y = -0.1, py = 0``, ``px`` from the energy).
    """

    system = "henon_heiles"
    param_names = ("lam",)
    lam: float

    def __init__(self, lam: float = 1.0) -> None:
        self._set(4, lam=lam)
        self.y0_ref = self.state_at_energy(0.125)

    def energy(self, y: ArrayLike) -> np.ndarray:
        """The Hamiltonian ``H`` at each state of ``y`` (shape ``(..., 4)``)."""
        y = np.asarray(y, dtype=np.float64)
        x, q, px, py = np.moveaxis(y, -1, 0)
        return 0.5 * (px ** 2 + py ** 2) + 0.5 * (x ** 2 + q ** 2) + self.lam * (x ** 2 * q - q ** 3 / 3)

    def state_at_energy(self, E: float, y: float = -0.1) -> tuple[float, float, float, float]:
        """``(0, y, px, 0)`` with ``px >= 0`` chosen so that ``H = E``."""
        kinetic = E - self.energy([0.0, y, 0.0, 0.0])
        if kinetic < 0:
            raise ValueError(f"energy {E} is below the potential at y={y}")
        return (0.0, float(y), float(np.sqrt(2 * kinetic)), 0.0)


class DoublePendulum(Flow):
    """The planar double pendulum (point masses on massless rods) on ``(th1, th2, w1, w2)``,
    angles from the downward vertical:
    ``w1' = (-g (2 m1 + m2) sin th1 - m2 g sin(th1 - 2 th2) - 2 sin D m2 (w2^2 l2 + w1^2 l1 cos D))
    / (l1 den)``, ``w2' = 2 sin D (w1^2 l1 (m1 + m2) + g (m1 + m2) cos th1 + w2^2 l2 m2 cos D)
    / (l2 den)``, ``D = th1 - th2``, ``den = 2 m1 + m2 - m2 cos 2D``.

    Conservative (its exponents sum to 0 over a long orbit, though the divergence in these
    coordinates is not 0 pointwise).

    Parameters
    ----------
    m1, m2, l1, l2 : float
        Masses and lengths, > 0 (default 1).
    g : float
        Gravity (default 9.81).
    """

    system = "double_pendulum"
    param_names = ("m1", "m2", "l1", "l2", "g")
    m1: float
    m2: float
    l1: float
    l2: float
    g: float
    y0_ref = (np.pi / 2, np.pi / 2, 0.0, 0.0)

    def __init__(self, m1: float = 1.0, m2: float = 1.0, l1: float = 1.0, l2: float = 1.0,
                 g: float = 9.81) -> None:
        self._set(4, m1=m1, m2=m2, l1=l1, l2=l2, g=g)

    def energy(self, y: ArrayLike) -> np.ndarray:
        """Kinetic plus potential energy at each state of ``y`` (shape ``(..., 4)``)."""
        th1, th2, w1, w2 = np.moveaxis(np.asarray(y, dtype=np.float64), -1, 0)
        m1, m2, l1, l2, g = (self.m1, self.m2, self.l1, self.l2, self.g)
        kin = 0.5 * (m1 + m2) * l1 ** 2 * w1 ** 2 + 0.5 * m2 * l2 ** 2 * w2 ** 2 \
            + m2 * l1 * l2 * w1 * w2 * np.cos(th1 - th2)
        return kin - (m1 + m2) * g * l1 * np.cos(th1) - m2 * g * l2 * np.cos(th2)


class Duffing(Flow):
    """The forced Duffing oscillator ``x'' + delta x' + alpha x + beta x^3 = gamma cos(omega t)``
    on ``(x, v)``: ``x' = v``, ``v' = -delta v - alpha x - beta x^3 + gamma cos(omega t)``.

    Non-autonomous: the field reads ``t`` (each row's own time under the per-sample solvers).
    Its two exponents (the time direction's zero is not among them) sum to ``-delta``.

    Parameters
    ----------
    delta, alpha, beta, gamma, omega : float
        Defaults 0.3, -1, 1, 0.5, 1.2 (the chaotic double-well regime).
    """

    system = "duffing"
    param_names = ("delta", "alpha", "beta", "gamma", "omega")
    y0_ref = (1.0, 0.0)

    def __init__(self, delta: float = 0.3, alpha: float = -1.0, beta: float = 1.0, gamma: float = 0.5,
                 omega: float = 1.2) -> None:
        self._set(2, delta=delta, alpha=alpha, beta=beta, gamma=gamma, omega=omega)


__all__ = ["Chen", "Chua", "DoublePendulum", "Duffing", "Flow", "HenonHeiles", "Lorenz96", "Rossler", "SprottB",
           "SYSTEMS", "Thomas"]
