"""Edit strength over time: a constant, or keyframes interpolated per frame.

`--strength 3` is constant; `--strength 0s:0,1.5s:3,4s:3,5s:0` is piecewise linear in time
(seconds, from the frames' own timestamps, so variable frame rate is honoured). Before the first
keyframe the first value holds; after the last, the last value holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ganvid.errors import InputError


@dataclass(frozen=True)
class Strength:
    """Keyframes (times_s ascending, values). A constant has a single keyframe at 0 s."""

    times_s: tuple[float, ...]
    values: tuple[float, ...]

    @classmethod
    def constant(cls, value: float) -> Strength:
        return cls((0.0,), (float(value),))

    @classmethod
    def parse(cls, text: str) -> Strength:
        """Parse '3', '-1.5' or '0s:0,1.5s:3,4s:3,5s:0' (the 's' suffix is optional)."""
        text = text.strip()
        if ":" not in text:
            return cls.constant(_number(text, text))
        times, values = [], []
        for item in text.split(","):
            when, _, value = item.strip().partition(":")
            times.append(_number(when.strip().removesuffix("s"), text))
            values.append(_number(value.strip(), text))
        if any(b <= a for a, b in zip(times, times[1:], strict=False)):
            raise InputError(f"strength keyframes must have increasing times: {text!r}")
        if times[0] < 0:
            raise InputError(f"strength keyframe times must be >= 0 s: {text!r}")
        return cls(tuple(times), tuple(values))

    def at(self, times_s: np.ndarray) -> np.ndarray:
        """Strength at each time [N] (seconds) -> [N] float64."""
        return np.interp(np.asarray(times_s, dtype=np.float64), self.times_s, self.values)

    @property
    def is_zero(self) -> bool:
        return all(v == 0 for v in self.values)

    def label(self) -> str:
        """Short text for output file names: '3', 'm1.5', 'keyed'."""
        if len(self.values) > 1:
            return "keyed"
        return f"{self.values[0]:g}".replace("-", "m")


def _number(token: str, whole: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise InputError(
            f"cannot read strength {whole!r}: use a number like 3 or keyframes like "
            "0s:0,1.5s:3,4s:3,5s:0"
        ) from None
    if not np.isfinite(value):
        raise InputError(f"strength must be finite: {whole!r}")
    return value
