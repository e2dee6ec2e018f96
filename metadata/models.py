"""Per-function models fitted on task history: duration, output size, transfer time.

**Duration.** For input bytes x and c CPUs a function takes

    t(x, c) = (a + b*x) * g(c),    g(c) = s + (1 - s) / min(c, P)

- `a + b*x` is the work at one CPU: a fixed part (imports, setup, per-call overhead) plus a part
  proportional to the input. A task without input still costs `a` (the reference system's
  "ms per input byte" predicted 0 s for it);
- `g` is Amdahl's law with serial fraction `s` (code that does not speed up with CPUs, I/O waits)
  and parallelism cap `P >= 1`: the function scales with CPUs only up to the parallelism it has
  shown. `g(1) = 1`, so `a` and `b` are seconds at one CPU. Below one CPU (fractional Lambda
  vCPUs) the parallel part slows by 1/c, which is how CPU time slicing behaves.

Why this form: it has few parameters (learnable after a handful of samples), each physical, and
it extrapolates sanely: to unseen input sizes linearly, to unseen CPU counts along the Amdahl
curve, never predicting a speed-up beyond the largest CPU count that showed one (P is searched
only up to the largest CPU count observed). g is non-increasing in c, so more CPUs never predict
a slower task.

Fitting: for fixed (s, P) the model is linear in (a, b), with features g and x*g. We minimise
the squared *relative* error (rows divided by the observed time), because planning cares about
ratios and durations span orders of magnitude. A numpy grid over s (0..1) and P (1..max CPUs
seen) solves every (s, P) in closed form at once, with a, b >= 0; near-ties go to the smaller P,
then the smaller s (assume no unshown speed-up; assume CPU-bound below one CPU). The chosen shape
is then refitted with scikit-learn's HuberRegressor (robust to stragglers such as a first call
that paid imports) when there are enough samples and the least-squares residuals show outliers
(beyond `OUTLIER_Z` robust standard deviations), after the outliers themselves are left out
(a duration measured as nearly nothing is a leverage point of a relative fit, which Huber,
robust to residuals only, would keep); without outliers Huber's answer is nearly the
least-squares one, so the refit (and scikit-learn's import) is skipped. Shape needs two CPU
counts: history at a single CPU count keeps (a + b*x) at that count and takes the shape from
the caller (the `@task` parallelism hint, else single-threaded: s = 0, P = 1). Input bytes that
barely vary cannot separate a from b, so then b = 0 (duration independent of input size).

**Spread** is the standard deviation of log(observed / predicted), shrunk towards
`DEFAULT_HISTORY_SIGMA` with `SIGMA_PRIOR_WEIGHT` pseudo-samples so that three lucky samples do
not claim certainty.

**Output bytes**: `a + b*x` with the same relative, non-negative, robust fit; the median when
input sizes barely vary. **Transfer**: `latency + nbytes / bandwidth` from measured uploads.

**CPU demand**: the CPUs a function keeps busy while it runs (what it takes of a host shared by
many workers), from records that measured its CPU time: per attempt, `cpu_s / isolated_s` (CPU
time over the wall time without contention). An attempt that used at least `SATURATED_FRACTION`
of its configuration's CPUs may have wanted more (its demand is censored at its CPUs); the
others show the demand itself. The demand is the median of the uncensored ratios, at least the
most CPUs a censored attempt filled, at least `MIN_CPU_DEMAND`; when every attempt was censored
the function is CPU-bound as far as anyone saw (`CpuDemandModel.bound_only`). A sleeping or
I/O-bound function demands little. The runtime measures the task's own thread, so CPU work in
threads a function starts (a multi-threaded BLAS) is not counted.

scikit-learn is imported only inside the fitting functions (its import costs about a second).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

F64 = NDArray[np.float64]

SERIAL_GRID = np.linspace(0.0, 1.0, 51)
"""Serial fractions s tried by the grid search (step 0.02)."""

CAP_GRID_STEP = 1.1
"""Parallelism caps tried: geometric from 1 CPU by this factor up to the most CPUs observed."""

CPU_DECIMALS = 3
"""CPU counts equal to this many decimals are the same configuration."""

INPUT_SPREAD_MIN = 0.1
"""Least (max - min) / max of input bytes that lets a fit separate fixed and per-byte parts."""

BYTES_SCALE = 1e6
"""Input bytes are fitted in MB, for numerical conditioning."""

MIN_DURATION_S = 1e-6
"""Observed and predicted durations are floored at one microsecond (timer resolution); a fit
whose fixed part is 0 (time proportional to input) would otherwise predict 0 s at no input."""

TIE_RTOL = 1e-3
"""Grid shapes within this relative error of the best one count as tied."""

TIE_ATOL = 1e-10
"""... or within this absolute mean squared relative error (exact synthetic data)."""

GRID_MAX_ROWS = 600
"""The grid search uses at most this many samples (evenly spaced); the final fit uses all."""

HUBER_MIN_SAMPLES = 10
"""Fewer samples than this are fitted by least squares only (too few to tell outliers)."""

OUTLIER_Z = 3.5
"""A sample whose relative residual lies beyond this many robust standard deviations is an
outlier (Iglewicz and Hoaglin's modified z-score threshold); only then is the least-squares fit
refitted by HuberRegressor, which otherwise would return nearly the same coefficients at ~100x
the cost (and scikit-learn's import)."""

MAD_TO_SIGMA = 1.4826
"""Median absolute deviation -> standard deviation for normally distributed residuals."""

HUBER_EPSILON = 1.35
"""HuberRegressor's threshold (in robust standard deviations) between squared and linear loss."""

DEFAULT_HISTORY_SIGMA = 0.15
"""Log-space spread assumed before the residuals say otherwise (about 15 % CV)."""

SIGMA_PRIOR_WEIGHT = 2.0
"""Pseudo-samples of DEFAULT_HISTORY_SIGMA mixed into the residual spread."""

MIN_SIGMA = 0.01
"""Floor of any fitted log-space spread."""

MIN_TRANSFER_SAMPLES = 8
"""Measured transfers needed before learned transfer figures override the platform's."""

SATURATED_FRACTION = 0.9
"""An attempt whose CPU time over wall time is at least this fraction of its CPUs used all it
was given: its CPU demand is at least its CPUs, maybe more (censored)."""

MIN_CPU_DEMAND = 0.01
"""Floor of a learned CPU demand (a task of no measurable CPU work still takes its turn)."""


def amdahl(cpus: ArrayLike, serial: ArrayLike, cap: ArrayLike) -> F64:
    """g(c) = s + (1 - s) / min(c, P): slowdown relative to one CPU (broadcasting)."""
    s = np.asarray(serial, dtype=float)
    return np.asarray(s + (1.0 - s) / np.minimum(np.asarray(cpus, float), cap), dtype=float)


@dataclass(frozen=True)
class DurationModel:
    """t(x, c) = (fixed_s + per_byte_s*x) * g(c) / g(ref_cpus) with g = amdahl(., serial, cap)."""

    fixed_s: float
    per_byte_s: float
    serial: float
    cap: float
    shape_learned: bool
    ref_cpus: float
    sigma: float
    samples: int
    observed_cpus: tuple[float, ...]

    def describe(self) -> str:
        """One line for people: the fitted form with its numbers."""
        per_mb = self.per_byte_s * BYTES_SCALE
        shape = (f"serial fraction {self.serial:.2f}, faster up to {self.cap:.3g} CPUs"
                 if self.shape_learned else "one CPU count seen: shape from the @task hint")
        cpus = f"{self.ref_cpus:.3g} CPU{'' if self.ref_cpus == 1 else 's'}"
        return (f"{self.fixed_s:.4g} s + {per_mb:.4g} s/MB of input at {cpus}; {shape}; "
                f"spread {self.sigma:.0%} ({self.samples} samples)")

    def predict(self, input_bytes: ArrayLike, cpus: ArrayLike, serial: ArrayLike | None = None,
                cap: ArrayLike | None = None) -> F64:
        """Seconds, broadcasting input_bytes against cpus. `serial`/`cap` give the shape when
        the history could not learn it (one CPU count seen); ignored otherwise."""
        s = self.serial if self.shape_learned or serial is None else serial
        p = self.cap if self.shape_learned or cap is None else cap
        work = self.fixed_s + self.per_byte_s * np.asarray(input_bytes, dtype=float)
        seconds = work * amdahl(cpus, s, p) / amdahl(self.ref_cpus, s, p)
        return np.asarray(np.maximum(seconds, MIN_DURATION_S), dtype=float)


@dataclass(frozen=True)
class OutputModel:
    """output_bytes = fixed_bytes + per_byte * input_bytes."""

    fixed_bytes: float
    per_byte: float
    sigma: float
    samples: int

    def describe(self) -> str:
        """One line for people: the fitted form with its numbers."""
        return (f"{self.fixed_bytes:,.0f} bytes + {self.per_byte:.4g} x input bytes; spread "
                f"{self.sigma:.0%} ({self.samples} samples)")

    def predict(self, input_bytes: ArrayLike) -> F64:
        return np.asarray(self.fixed_bytes + self.per_byte * np.asarray(input_bytes, float))


@dataclass(frozen=True)
class TransferModel:
    """seconds = latency_s + nbytes / bandwidth_bps (bandwidth None: not learnable)."""

    latency_s: float
    bandwidth_bps: float | None
    samples: int


@dataclass(frozen=True)
class CpuDemandModel:
    """CPUs a function keeps busy: `demand`, or when `bound_only`, at least `demand` (every
    attempt used all the CPUs it had). At a configuration the demand is at most its CPUs
    (`MetadataAccess.predict_cpu_demand`)."""

    demand: float
    bound_only: bool
    samples: int


def fit_cpu_demand(cpus: ArrayLike, cpu_s: ArrayLike, isolated_s: ArrayLike
                   ) -> CpuDemandModel | None:
    """The CPU demand of one function from its measured attempts (None: none measured)."""
    c = np.asarray(cpus, dtype=float)
    work = np.asarray(cpu_s, dtype=float)
    wall = np.maximum(np.asarray(isolated_s, dtype=float), MIN_DURATION_S)
    keep = np.isfinite(work) & (work >= 0) & (c > 0)
    c, work, wall = c[keep], work[keep], wall[keep]
    if not len(c):
        return None
    ratio = np.minimum(work / wall, c)
    censored = ratio >= SATURATED_FRACTION * c
    floor = float(np.max(ratio[censored])) if censored.any() else 0.0
    if censored.all():
        return CpuDemandModel(max(floor, MIN_CPU_DEMAND), True, len(c))
    demand = max(float(np.median(ratio[~censored])), floor, MIN_CPU_DEMAND)
    return CpuDemandModel(demand, False, len(c))


def fit_duration(input_bytes: ArrayLike, cpus: ArrayLike, seconds: ArrayLike) -> DurationModel:
    """The duration model of one function from its samples (at least one)."""
    x = np.asarray(input_bytes, dtype=float) / BYTES_SCALE
    c = np.round(np.asarray(cpus, dtype=float), CPU_DECIMALS)
    t = np.maximum(np.asarray(seconds, dtype=float), MIN_DURATION_S)
    if not (len(x) == len(c) == len(t) > 0):
        raise ValueError("fit_duration needs equally long, non-empty sample arrays")
    use_x = _informative(x)
    seen = tuple(float(v) for v in np.unique(c))
    if len(seen) == 1:
        serial, cap, ref, learned = 0.0, 1.0, seen[0], False
    else:
        serial, cap = _grid_shape(x, c, t, use_x)
        ref, learned = 1.0, True
    g = amdahl(c, serial, cap) / amdahl(ref, serial, cap)
    feats = np.column_stack([g, x * g]) if use_x else g[:, None]
    coef = robust_relative_fit(feats, t)
    a = float(coef[0])
    b = float(coef[1]) / BYTES_SCALE if use_x else 0.0
    pred = (coef[0] + (coef[1] * x if use_x else 0.0)) * g
    dof = len(coef) + (2 if learned else 0)
    return DurationModel(a, b, serial, cap, learned, ref, log_sigma(t, pred, dof), len(t), seen)


def fit_output(input_bytes: ArrayLike, output_bytes: ArrayLike) -> OutputModel:
    """The output-size model of one function from its samples (at least one)."""
    x = np.asarray(input_bytes, dtype=float) / BYTES_SCALE
    o = np.maximum(np.asarray(output_bytes, dtype=float), 1.0)
    if len(x) != len(o) or not len(o):
        raise ValueError("fit_output needs equally long, non-empty sample arrays")
    if _informative(x):
        coef = robust_relative_fit(np.column_stack([np.ones_like(x), x]), o)
        a, b = float(coef[0]), float(coef[1])
    else:
        a, b = float(np.median(o)), 0.0
    pred = np.maximum(a + b * x, 1.0)
    return OutputModel(a, b / BYTES_SCALE, log_sigma(o, pred, 2 if b else 1), len(o))


def fit_transfer(nbytes: ArrayLike, seconds: ArrayLike) -> TransferModel | None:
    """Latency and bandwidth from measured transfers, or None with too few samples."""
    n = np.asarray(nbytes, dtype=float)
    t = np.asarray(seconds, dtype=float)
    keep = (t > 0) & (n >= 0)
    n, t = n[keep], t[keep]
    if len(t) < MIN_TRANSFER_SAMPLES:
        return None
    if not _informative(n):
        return TransferModel(float(np.median(t)), None, len(t))
    coef = robust_relative_fit(np.column_stack([np.ones_like(n), n / BYTES_SCALE]), t)
    per_byte = float(coef[1]) / BYTES_SCALE
    return TransferModel(float(coef[0]), 1.0 / per_byte if per_byte > 0 else None, len(t))


def log_sigma(observed: F64, predicted: F64, dof: int) -> float:
    """Spread of log(observed / predicted), shrunk towards DEFAULT_HISTORY_SIGMA."""
    r = np.log(np.maximum(observed, MIN_DURATION_S) / np.maximum(predicted, MIN_DURATION_S))
    var = (SIGMA_PRIOR_WEIGHT * DEFAULT_HISTORY_SIGMA**2 + float(np.sum(r * r))) / (
        SIGMA_PRIOR_WEIGHT + max(len(r) - dof, 0))
    return max(float(np.sqrt(var)), MIN_SIGMA)


def _informative(x: F64) -> bool:
    hi = float(np.max(x)) if len(x) else 0.0
    return hi > 0 and (hi - float(np.min(x))) >= INPUT_SPREAD_MIN * hi


def _grid_shape(x: F64, c: F64, t: F64, use_x: bool) -> tuple[float, float]:
    """(serial, cap) minimising relative squared error, all grid points solved at once."""
    if len(t) > GRID_MAX_ROWS:
        pick = np.linspace(0, len(t) - 1, GRID_MAX_ROWS).round().astype(int)
        x, c, t = x[pick], c[pick], t[pick]
    top = max(float(c.max()), 1.0)
    steps = int(np.floor(np.log(top) / np.log(CAP_GRID_STEP))) + 1
    caps = np.unique(np.concatenate([CAP_GRID_STEP ** np.arange(steps), c[c >= 1], [1.0, top]]))
    caps = caps[caps <= top]
    s_grid, p_grid = (m.ravel() for m in np.meshgrid(SERIAL_GRID, caps))
    u = amdahl(c[None, :], s_grid[:, None], p_grid[:, None]) / t[None, :]   # [G, n]
    v = u * x[None, :] if use_x else np.zeros_like(u)
    sums = _Sums.of(u, v)
    a, b = sums.nonneg_solution() if use_x else (sums.u / sums.uu, np.zeros(len(u)))
    sse = sums.sse(a, b, len(t))
    tied = sse <= sse.min() * (1 + TIE_RTOL) + TIE_ATOL * len(t)
    order = np.lexsort((s_grid, p_grid))  # by cap, then serial fraction
    best = order[np.argmax(tied[order])]
    return float(s_grid[best]), float(p_grid[best])


@dataclass(frozen=True)
class _Sums:
    """Row-wise sums of the normal equations of 1 ~ a*u + b*v (one row per grid point)."""

    uu: F64
    vv: F64
    uv: F64
    u: F64
    v: F64

    @classmethod
    def of(cls, u: F64, v: F64) -> _Sums:
        return cls((u * u).sum(1), (v * v).sum(1), (u * v).sum(1), u.sum(1), v.sum(1))

    def sse(self, a: F64, b: F64, n: int) -> F64:
        """Sum of squared residuals, expanded (exact to ~1e-13, far below TIE_ATOL * n)."""
        return np.asarray(n - 2 * (a * self.u + b * self.v) + a * a * self.uu
                          + 2 * a * b * self.uv + b * b * self.vv)

    def nonneg_solution(self) -> tuple[F64, F64]:
        """Least squares with a, b >= 0: both, a only or b only, whichever is feasible and best."""
        det = self.uu * self.vv - self.uv * self.uv
        with np.errstate(divide="ignore", invalid="ignore"):
            a2 = (self.vv * self.u - self.uv * self.v) / det
            b2 = (self.uu * self.v - self.uv * self.u) / det
            a1 = self.u / self.uu
            b1 = np.where(self.vv > 0, self.v / self.vv, 0.0)
        both_ok = (a2 >= 0) & (b2 >= 0) & np.isfinite(a2) & np.isfinite(b2) & (np.abs(det) > 0)
        take_b = ~both_ok & (b1 * self.v > a1 * self.u)  # the larger fit gain, smaller error
        a = np.where(both_ok, a2, np.where(take_b, 0.0, a1))
        b = np.where(both_ok, b2, np.where(take_b, b1, 0.0))
        return np.nan_to_num(a), np.nan_to_num(b)


def robust_relative_fit(features: F64, target: F64) -> F64:
    """Non-negative coefficients of target ~ features @ coef, minimising relative error;
    refitted by HuberRegressor when there are HUBER_MIN_SAMPLES or more samples and outliers."""
    rows = features / target[:, None]
    coef = _relative_least_squares(rows)
    active = coef > 0
    if len(target) < HUBER_MIN_SAMPLES or not active.any() or not _has_outliers(1 - rows @ coef):
        return coef
    # A sample far below the others (a duration measured as nearly nothing: a contention
    # reading longer than the task could have waited) is a leverage point of the relative
    # fit - its row is 1/t - that drags every coefficient towards it, and Huber, robust to
    # residuals only, keeps it. The residuals' majority still tells it apart: refit without
    # the outliers first.
    keep = ~_outliers(1 - rows @ coef)
    if keep.sum() >= max(rows.shape[1], len(target) // 2):
        rows = rows[keep]
        coef = _relative_least_squares(rows)
        active = coef > 0
        if not active.any():
            return coef
    refined = np.zeros_like(coef)
    refined[active] = _huber(rows[:, active])
    ok = np.all(np.isfinite(refined)) and np.all(refined >= 0) and refined[active].all()
    return refined if ok else coef


def _relative_least_squares(rows: F64) -> F64:
    """Non-negative coef minimising |rows @ coef - 1|^2 (one or two features)."""
    if rows.shape[1] == 1:
        ones = np.ones(len(rows))
        return np.array([float(rows[:, 0] @ ones) / max(float(rows[:, 0] @ rows[:, 0]), 1e-300)])
    a, b = _Sums.of(rows[None, :, 0], rows[None, :, 1]).nonneg_solution()
    return np.array([a[0], b[0]])


def _outliers(residuals: F64) -> NDArray[np.bool_]:
    """Residuals beyond OUTLIER_Z robust (MAD) standard deviations from the median."""
    centre = np.median(residuals)
    mad = float(np.median(np.abs(residuals - centre)))
    return np.abs(residuals - centre) > OUTLIER_Z * MAD_TO_SIGMA * max(mad, 1e-12)


def _has_outliers(residuals: F64) -> bool:
    """Any residual beyond OUTLIER_Z robust (MAD) standard deviations from the median?"""
    return bool(np.any(_outliers(residuals)))


def _huber(rows: F64) -> F64:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import HuberRegressor

    scale = np.sqrt(np.mean(rows * rows, axis=0))
    scale[scale == 0] = 1.0
    model = HuberRegressor(epsilon=HUBER_EPSILON, alpha=0.0, fit_intercept=False, max_iter=500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(rows / scale, np.ones(len(rows)))
    coef: F64 = np.asarray(model.coef_, dtype=float) / scale
    return coef
