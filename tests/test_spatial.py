"""Engstrom et al.'s rotations and translations: the transforms against their mesh formula
built by hand and against exact shifts and quarter turns, the grid's accuracy against a
loop, a hand-made classifier whose class flips at a known shift, and ``defstab spatial``
through the CLI."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from defstab.cli.main import main
from defstab.io.tables import read_csv
from defstab.translate.spatial import (
    apply_transforms,
    get_spatial_preset,
    spatial_accuracy,
    spatial_grid,
)

IMAGENET = get_spatial_preset("engstrom-imagenet")
CIFAR = get_spatial_preset("engstrom-cifar")


def _their_transform(img, deg, tx, ty):
    """Their mesh: linspace(−1, 1) per axis mapped by [[cos r, −sin r, ·], [sin r, cos r, ·]]
    plus the shift (content moved by +t px, read at −t), bilinear, zeros, clamped."""
    n = img.shape[-1]
    lin = torch.linspace(-1, 1, n, dtype=torch.float64)
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    r = deg * 0.01745327778  # their degrees-to-radians constant
    gx = math.cos(r) * xx - math.sin(r) * yy - tx * 2 / (n - 1)
    gy = math.sin(r) * xx + math.cos(r) * yy - ty * 2 / (n - 1)
    grid = torch.stack([gx, gy], -1)[None].to(img.dtype)
    return F.grid_sample(img[None], grid, align_corners=True).clamp(0, 1)[0]


def test_one_step_transform_is_their_mesh_formula():
    x = torch.rand(3, 2, 24, 24, generator=torch.Generator().manual_seed(0))
    params = torch.tensor([[12.0, 2.5, -1.0], [-30.0, 0.0, 3.0], [7.5, -4.25, 0.5]])
    frames = apply_transforms(x, params, IMAGENET)
    for i in range(3):
        for j, (deg, tx, ty) in enumerate(params.tolist()):
            assert torch.allclose(frames[i, j], _their_transform(x[i], deg, tx, ty), atol=1e-4)


@pytest.mark.parametrize("preset", [IMAGENET, CIFAR], ids=["imagenet", "cifar"])
def test_whole_pixel_shifts_are_exact_zero_filled_shifts(preset):
    x = torch.rand(2, 3, 20, 20, generator=torch.Generator().manual_seed(1))
    frames = apply_transforms(x, torch.tensor([[0.0, 3.0, -2.0], [0.0, 0.0, 0.0]]), preset)
    shifted = torch.zeros_like(x)
    shifted[..., : 22 - 4, 3:] = x[..., 2:, :17]  # content right 3, up 2
    assert torch.allclose(frames[:, 0], shifted, atol=1e-5)
    assert torch.allclose(frames[:, 1], x, atol=1e-5)


def test_a_quarter_turn_is_rot90():
    x = torch.rand(1, 1, 9, 9, generator=torch.Generator().manual_seed(2))
    frames = apply_transforms(x, torch.tensor([[90.0, 0.0, 0.0]]), IMAGENET)
    assert torch.allclose(frames[0, 0], torch.rot90(x[0], 1, dims=(1, 2)), atol=1e-5)


def test_the_grids_are_theirs():
    g = spatial_grid(IMAGENET, 224)
    assert g.shape == (775, 3)
    assert sorted(set(g[:, 0].tolist())) == [float(a) for a in range(-30, 31, 2)]
    assert sorted(set(g[:, 1].tolist())) == [-24.0, -12.0, 0.0, 12.0, 24.0]
    c = spatial_grid(CIFAR, 32)
    assert sorted(set(c[:, 2].tolist())) == [-3.0, -1.5, 0.0, 1.5, 3.0]
    assert g[0].tolist() == [-30.0, -24.0, -24.0] and g[1].tolist() == [-30.0, -24.0, -12.0]


class Centroid(nn.Module):
    """Class 1 when the brightness lies right of the centre, else 0."""

    def forward(self, x):
        n = x.shape[-1]
        mass = x.sum((1, 2))
        right = (mass * torch.arange(n)).sum(-1) / mass.sum(-1) > (n - 1) / 2
        return torch.stack([(~right).float(), right.float()], 1) * 10


def test_a_classifier_that_flips_at_a_known_shift():
    # a blob centred 2 px left of the centre: only the +3 px shifts carry it across;
    # one 4 px left: no shift of ±3 px and no rotation of ±30° does
    x = torch.zeros(4, 1, 33, 33)
    x[0, 0, 15:18, 13:16] = 1.0  # centre column 14, the image's 16
    x[1, 0, 15:18, 11:14] = 1.0  # column 12
    # 6 px left and 8 px above / below the centre: only the large rotations of one sign,
    # with the +3 px shifts, carry it across — the first or the last angles of the grid
    x[2, 0, 7:10, 9:12] = 1.0
    x[3, 0, 23:26, 9:12] = 1.0
    labels = torch.zeros(4, dtype=torch.long)
    found = spatial_accuracy(Centroid(), x, labels, CIFAR, torch.Generator().manual_seed(0))
    assert found["correct_natural"].tolist() == [True] * 4
    assert found["correct_grid"].tolist()[:2] == [False, True]
    assert found["worst"][0, 1] == 3.0  # the worst transform moves it right by 3 px
    # the grid against a loop over its transforms
    loop = []
    with torch.no_grad():
        for img in x:
            ok = True
            for deg, tx, ty in spatial_grid(CIFAR, 33).tolist():
                moved = apply_transforms(img[None], torch.tensor([[deg, tx, ty]]), CIFAR)[0]
                ok &= bool(Centroid()(moved).argmax(-1) == 0)
            loop.append(ok)
    assert found["correct_grid"].tolist() == loop


def test_spatial_cli_and_mistakes(tmp_path, tiny_cifar, capsys):
    out = tmp_path / "sp"
    assert main(["spatial", "--model", "vgg_cifar_maxpool", "--width", "0.125", "--data",
                 tiny_cifar, "--images", "4", "--quiet", "--out", str(out)]) == 0  # fmt: skip
    (row,) = read_csv(out / "summary.csv")
    assert row["preset"] == "engstrom-cifar" and row["transforms"] == "775"
    assert float(row["grid"]) <= float(row["worst_of_10"]) <= 1.0
    per = read_csv(out / "per_image.csv")
    assert len(per) == 4 and sum(int(r["grid"]) for r in per) / 4 == float(row["grid"])
    capsys.readouterr()
    try:
        status = main(["spatial", "--model", "vgg_cifar_maxpool", "--data", tiny_cifar,
                       "--preset", "engstrom", "--out", str(tmp_path / "bad")])  # fmt: skip
    except SystemExit as e:
        status = e.code
    assert status == 2 and "invalid choice" in capsys.readouterr().err
