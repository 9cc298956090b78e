"""Whole-image shifts that keep every pixel: circular (content wraps around) by integers,
and band-limited by any fraction of a pixel, plus the shift grids of Michaeli et al.'s
worst-shift accuracy.

Convention: a shift (dx, dy) moves the content right by dx and down by dy pixels,
``out[y, x] = img[y − dy, x − dx]`` (indices modulo the size).

* :func:`circular_shift` — ``torch.roll`` for many shifts at once, by one gather.
* :func:`fourier_shift` — the periodic band-limited (ideal, sinc) interpolation that
  Michaeli et al.'s ``subpixel_shift`` computes by zero-insertion, an ideal low-pass and a
  roll: a phase ramp on the 2-D spectrum, the Nyquist bin of an even side split evenly
  between its two signs (so the result stays real). For integer shifts it equals
  :func:`circular_shift` up to float rounding.
* :func:`shift_grid` — the shift sets of ``shift_eval.py`` (integer, half-pixel,
  fraction), in the convention above.
"""

from __future__ import annotations

import math

import torch

from defstab._validate import check_images

#: Michaeli et al.'s grids: integer rolls {1…R−1}², the half-pixel shifts s − ½ of those,
#: fractions k/u of a pixel, and integer ∪ half ("full")
GRIDS = ("integer", "half", "fraction", "full")


def _as_shifts(shifts) -> torch.Tensor:
    shifts = torch.as_tensor(shifts)
    if shifts.ndim != 2 or shifts.shape[-1] != 2:
        raise ValueError(f"shifts must be (S, 2) as (dx, dy), got shape {tuple(shifts.shape)}.")
    if not torch.isfinite(shifts.double()).all():
        raise ValueError("shifts must be finite numbers of pixels.")
    return shifts


def circular_shift(images: torch.Tensor, shifts) -> torch.Tensor:
    """Every image rolled by every integer shift: (N, C, H, W), (S, 2) (dx, dy) ->
    (N, S, C, H, W), content wrapped around the borders (``torch.roll`` by (dy, dx))."""
    check_images(images)
    shifts = _as_shifts(shifts)
    if shifts.is_floating_point() and not torch.equal(shifts, shifts.round()):
        raise ValueError("circular_shift takes whole pixels; use fourier_shift for fractions.")
    shifts = shifts.long().to(images.device)
    h, w = images.shape[-2:]
    rows = (torch.arange(h, device=images.device) - shifts[:, 1, None]) % h  # (S, H)
    cols = (torch.arange(w, device=images.device) - shifts[:, 0, None]) % w  # (S, W)
    # one gather for all shifts: (N, H, W, C) read at (S, H, 1) × (S, 1, W) -> (N, S, H, W, C)
    frames = images.permute(0, 2, 3, 1)[:, rows[:, :, None], cols[:, None, :]]
    return frames.permute(0, 1, 4, 2, 3).contiguous()


def phase_ramp(n: int, shifts: torch.Tensor) -> torch.Tensor:
    """(S, n) complex multipliers of the n DFT bins that move a periodic signal by
    ``shifts`` (S,) samples: e^{−2πi k d / n}; for even n the Nyquist bin gets cos(π d),
    the mean of its two signs' ramps (the signal stays real)."""
    k = torch.fft.fftfreq(n, d=1.0 / n, dtype=torch.float64)  # 0, 1, …, −1
    d = shifts.double()[:, None]
    ramp = torch.polar(torch.ones_like(d * k), -2 * math.pi * d * k / n)
    if n % 2 == 0:
        ramp[:, n // 2] = torch.cos(math.pi * d[:, 0]).to(ramp.dtype)
    return ramp


def fourier_shift(images: torch.Tensor, shifts) -> torch.Tensor:
    """Band-limited circular shifts by any real number of pixels: (N, C, H, W), (S, 2)
    (dx, dy) -> (N, S, C, H, W), the images' periodic trigonometric interpolation read
    at the shifted grid (ideal sinc interpolation; Michaeli et al.'s ``subpixel_shift``).
    Pixel values can leave [0, 1] a little (ringing), as with the authors' shift."""
    check_images(images)
    shifts = _as_shifts(shifts).double()
    h, w = images.shape[-2:]
    # float64 images in float64; others in float32 (errors ~1e-6 of the pixel range)
    real = torch.float64 if images.dtype == torch.float64 else torch.float32
    spectrum = torch.fft.fft2(images.to(real))  # (N, C, H, W)
    ramp = phase_ramp(h, shifts[:, 1])[:, :, None] * phase_ramp(w, shifts[:, 0])[:, None, :]
    ramp = ramp.to(spectrum.dtype).to(images.device)  # (S, H, W)
    out = torch.fft.ifft2(spectrum[:, None] * ramp[None, :, None]).real
    return out.to(images.dtype)


def shift_images(images: torch.Tensor, shifts) -> torch.Tensor:
    """Circular shifts, exact for whole pixels (:func:`circular_shift`) and band-limited
    otherwise (:func:`fourier_shift`): (N, C, H, W), (S, 2) -> (N, S, C, H, W)."""
    shifts = _as_shifts(shifts)
    if not shifts.is_floating_point() or torch.equal(shifts, shifts.round()):
        return circular_shift(images, shifts.round().long())
    return fourier_shift(images, shifts)


def fraction_factors(max_up: int) -> list[int]:
    """Michaeli et al.'s denominators: 1…max_up without those that divide a larger one
    (their fractions would repeat): 4 -> [3, 4]."""
    ups = range(1, max_up + 1)
    return [u for u in ups if not any(j > u and j % u == 0 for j in ups)]


def shift_grid(grid: str, max_shift: int = 32, max_up: int = 4) -> torch.Tensor:
    """The shifts (S, 2) (dx, dy) in pixels of one of Michaeli et al.'s grids, in their
    order, converted to this module's convention:

    * ``integer``: ``torch.roll`` by (s_x, s_y) ∈ {1…R−1}² (R = ``max_shift``): content
      moved by +s (shifts with a zero component are not in their set);
    * ``half``: for each of those, ``subpixel_shift(up=2, shift=2s−1)``, which reads the
      image at i + s − ½: content moved by −(s − ½);
    * ``fraction``: for u in :func:`fraction_factors` (``max_up``) and k, l ∈ 1…u−1, the
      image read at i + k/u: content moved by −k/u (13 shifts for max_up = 4);
    * ``full``: integer then half.
    """
    if grid not in GRIDS:
        raise ValueError(f"grid must be one of {', '.join(GRIDS)}, got {grid!r}.")
    if grid == "fraction":
        if isinstance(max_up, bool) or not isinstance(max_up, int) or max_up < 2:
            raise ValueError(f"the fraction grid needs max_up ≥ 2 (halves), got {max_up!r}.")
        pairs = [
            (-k / u, -m / u)
            for u in fraction_factors(max_up)
            for k in range(1, u)
            for m in range(1, u)
        ]
        return torch.tensor(pairs, dtype=torch.float64)
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 2:
        raise ValueError(f"the {grid} grid needs max_shift ≥ 2, got {max_shift!r}.")
    r = torch.arange(1, max_shift, dtype=torch.float64)
    # their loops run s_x (rows) outer, s_y (columns) inner; the set is the same either way
    integer = torch.cartesian_prod(r, r).flip(-1)
    half = -(integer - 0.5)
    return {"integer": integer, "half": half, "full": torch.cat([integer, half])}[grid]
