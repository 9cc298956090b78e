"""Warping and global fields: identity, integer shifts, oracles, gradients, errors."""

import math

import numpy as np
import pytest
import torch

from defstab.deform import (
    affine_field,
    apply_tps,
    random_tps,
    rotation_field,
    sample_displacements,
    scaling_field,
    shear_field,
    translation_field,
    warp,
)


def test_identity_is_exact(gen):
    x = torch.rand(3, 2, 17, 23, generator=gen)
    assert torch.equal(warp(x, torch.zeros(3, 17, 23, 2)), x)
    d = torch.zeros(3, 9, 2)
    assert torch.equal(apply_tps(x, d, grid=3), x)


@pytest.mark.parametrize("dx,dy", [(1, 0), (0, 2), (-3, 1), (2, -2)])
def test_integer_translation_zeros(dx, dy, gen):
    x = torch.rand(2, 3, 12, 15, generator=gen)
    out = warp(x, translation_field((12, 15), dx, dy))
    expected = torch.zeros_like(x)
    # content moves by (dx, dy): out[y, x] = in[y - dy, x - dx]
    h, w = 12, 15
    ys, xs = slice(max(dy, 0), h + min(dy, 0)), slice(max(dx, 0), w + min(dx, 0))
    ys_in = slice(max(-dy, 0), h + min(-dy, 0))
    xs_in = slice(max(-dx, 0), w + min(-dx, 0))
    expected[..., ys, xs] = x[..., ys_in, xs_in]
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_integer_translation_border_and_reflection(gen):
    x = torch.rand(1, 1, 6, 8, generator=gen)
    out_b = warp(x, translation_field((6, 8), 2, 0), padding="border")
    torch.testing.assert_close(
        out_b[..., :, :2], x[..., :, :1].expand(-1, -1, -1, 2), atol=1e-6, rtol=0
    )
    torch.testing.assert_close(out_b[..., :, 2:], x[..., :, :-2], atol=1e-6, rtol=0)
    out_r = warp(x, translation_field((6, 8), 2, 0), padding="reflection")
    # reading at x = -2, -1 reflects about pixel 0 to x = 2, 1
    torch.testing.assert_close(out_r[..., :, 0], x[..., :, 2], atol=1e-6, rtol=0)
    torch.testing.assert_close(out_r[..., :, 1], x[..., :, 1], atol=1e-6, rtol=0)


def test_warp_matches_scipy_map_coordinates(gen):
    ndimage = pytest.importorskip("scipy.ndimage")
    x = torch.rand(2, 3, 20, 26, generator=gen, dtype=torch.float64)
    disp = sample_displacements(2, 3, 3.0, generator=gen).double()
    out = apply_tps(x, disp, grid=3)
    from defstab.deform import get_tps

    field = get_tps((20, 26), 3).field(disp).numpy()
    yy, xx = np.mgrid[0:20, 0:26]
    for i in range(2):
        coords = [yy + field[i, ..., 1], xx + field[i, ..., 0]]
        for c in range(3):
            ref = ndimage.map_coordinates(
                x[i, c].numpy(), coords, order=1, mode="constant", cval=0.0
            )
            # map_coordinates' constant mode zeroes points outside [0, n-1] entirely,
            # grid_sample blends with zeros; compare strictly inside.
            inside = (coords[0] >= 0) & (coords[0] <= 19) & (coords[1] >= 0) & (coords[1] <= 25)
            np.testing.assert_allclose(out[i, c].numpy()[inside], ref[inside], atol=1e-10)


def test_shared_field_broadcasts(gen):
    x = torch.rand(4, 1, 10, 10, generator=gen)
    f = translation_field((10, 10), 0.5, 0.25)
    torch.testing.assert_close(warp(x, f[0]), warp(x, f.expand(4, -1, -1, -1)))


def test_gradcheck_warp(gen):
    x = torch.rand(1, 2, 6, 7, generator=gen, dtype=torch.float64, requires_grad=True)
    # keep sample points off the pixel grid, where bilinear interpolation has kinks
    f = (0.3 + 0.4 * torch.rand(1, 6, 7, 2, generator=gen, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(warp, (x, f))


def test_gradient_reaches_displacements(gen):
    x = torch.rand(2, 1, 16, 16, generator=gen, dtype=torch.float64)
    d = sample_displacements(2, 3, 1.0, generator=gen).double().requires_grad_()
    apply_tps(x, d, grid=3).square().sum().backward()
    assert d.grad is not None and d.grad.abs().sum() > 0


def test_random_tps_replay_and_determinism():
    x = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    out1, d1 = random_tps(x, 3, 2.0, torch.Generator().manual_seed(3))
    out2, d2 = random_tps(x, 3, 2.0, torch.Generator().manual_seed(3))
    assert torch.equal(out1, out2) and torch.equal(d1, d2)
    torch.testing.assert_close(apply_tps(x, d1, 3), out1)
    assert not torch.equal(out1, x)


def test_rotation_field_moves_a_point():
    # A 90° counter-clockwise (on screen) turn about the centre moves the content at
    # (cx + r, cy) to (cx, cy - r).
    size = (21, 21)
    f = rotation_field(size, 90.0)[0]
    # output pixel (10, 5) = (cx, cy - 5) must read the input at (15, 10)
    torch.testing.assert_close(
        f[5, 10] + torch.tensor([10.0, 5.0]), torch.tensor([15.0, 10.0]), atol=1e-5, rtol=0
    )


def test_scaling_and_shear_fields():
    size = (11, 11)
    f = scaling_field(size, 2.0)[0]  # content doubles: output (9, 5) reads input (7, 5)
    torch.testing.assert_close(f[5, 9] + torch.tensor([9.0, 5.0]), torch.tensor([7.0, 5.0]))
    s = shear_field(size, shear_x=0.5)[0]  # q=(5, 7) -> (5 + 0.5*2, 7) = (6, 7)
    torch.testing.assert_close(s[7, 6] + torch.tensor([6.0, 7.0]), torch.tensor([5.0, 7.0]))


def test_rotation_of_a_linear_ramp_is_exact():
    """Bilinear interpolation is exact on a linear image, so a rotated ramp has a closed form."""
    h, w = 31, 41
    yy, xx = torch.meshgrid(torch.arange(h).double(), torch.arange(w).double(), indexing="ij")
    a, b, c0 = 0.3, -0.7, 5.0
    ramp = (a * xx + b * yy + c0)[None, None]
    theta = math.radians(12.0)
    out = warp(ramp, rotation_field((h, w), 12.0).double())
    cx, cy = (w - 1) / 2, (h - 1) / 2
    # the input read at output p is R^-1 (p - c) + c, with R = [[cos, sin], [-sin, cos]]
    dx, dy = xx - cx, yy - cy
    sx = math.cos(theta) * dx - math.sin(theta) * dy + cx
    sy = math.sin(theta) * dx + math.cos(theta) * dy + cy
    inside = (sx >= 0) & (sx <= w - 1) & (sy >= 0) & (sy <= h - 1)
    expected = a * sx + b * sy + c0
    torch.testing.assert_close(out[0, 0][inside], expected[inside], atol=1e-5, rtol=0)
    assert inside.float().mean() > 0.7
    m = torch.tensor([[math.cos(0.1), -math.sin(0.1), 1.0], [math.sin(0.1), math.cos(0.1), -2.0]])
    assert affine_field((31, 31), m).shape == (1, 31, 31, 2)


@pytest.mark.parametrize(
    "images,field,match",
    [
        (torch.zeros(3, 8, 8), torch.zeros(8, 8, 2), r"\(N, C, H, W\)"),
        (torch.zeros(1, 1, 8, 8), torch.zeros(1, 8, 9, 2), "does not match"),
        (torch.zeros(2, 1, 8, 8), torch.zeros(3, 8, 8, 2), "batch size"),
        (torch.zeros(1, 1, 8, 8), torch.zeros(1, 8, 8, 3), "shape"),
        (torch.zeros(1, 1, 8, 8, dtype=torch.long), torch.zeros(8, 8, 2), "floating"),
        (torch.full((1, 1, 8, 8), float("nan")), torch.zeros(8, 8, 2), "NaN"),
        (torch.zeros(1, 1, 8, 8), torch.full((8, 8, 2), float("nan")), "NaN"),
    ],
)
def test_warp_bad_input(images, field, match):
    with pytest.raises(ValueError, match=match):
        warp(images, field)


def test_bad_padding_and_affine():
    with pytest.raises(ValueError, match="padding"):
        warp(torch.zeros(1, 1, 4, 4), torch.zeros(4, 4, 2), padding="wrap")
    with pytest.raises(ValueError, match="singular"):
        affine_field((8, 8), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="scale"):
        scaling_field((8, 8), 0.0)
