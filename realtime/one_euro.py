"""The One Euro filter (Casiez, Roussel, Vogel, CHI 2012), vectorised over any array shape.

A low-pass filter whose cutoff rises with the signal's speed: strong smoothing when still (no jitter), little
lag when moving. Each element is filtered independently with its own speed.
"""
from __future__ import annotations

import math

import numpy as np

from realtime.errors import UnveilError


def smoothing_factor(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Exponential-smoothing weight of a first-order low-pass with `cutoff` Hz sampled every `dt` seconds."""
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """cutoff = min_cutoff + beta * |smoothed speed|; speeds are in the signal's units per second.

    min_cutoff (Hz) sets the smoothing when still; beta (1 / signal unit) how fast the cutoff opens with speed;
    d_cutoff (Hz) smooths the speed estimate itself.
    """

    def __init__(self, min_cutoff: float, beta: float, d_cutoff: float = 1.0) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise UnveilError(
                f"One Euro filter needs min_cutoff > 0, d_cutoff > 0, beta >= 0; got {min_cutoff}, {d_cutoff}, {beta}"
            )
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None   # last filtered value
        self._dx: np.ndarray | None = None  # last filtered speed
        self._t = 0.0

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """Filtered value of sample `x` taken at time `t` seconds (float64, same shape as `x`)."""
        x = np.asarray(x, np.float64)
        if self._x is None or self._x.shape != x.shape or float(t) < self._t:
            # First sample, a new shape, or time going back (a seek, a looping source): start afresh from it.
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(t)
            return self._x.copy()
        dt = float(t) - self._t
        if dt == 0.0:
            # A repeated timestamp carries no time to filter over: keep the last estimate.
            return self._x.copy()
        speed = (x - self._x) / dt
        self._dx = self._dx + smoothing_factor(self.d_cutoff, dt) * (speed - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        self._x = self._x + smoothing_factor(cutoff, dt) * (x - self._x)
        self._t = float(t)
        return self._x.copy()
