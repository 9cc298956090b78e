"""The two derivatives of the warp at t = 0: Gruver et al.'s (bilinear sampling
differentiated through ``floor``, one-sided pixel by pixel) against autograd through an
independent implementation of their sampling, and the symmetric one; both through the CLI."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from defstab.cli.main import main
from defstab.io.tables import read_csv
from defstab.measure.lie_actions import TRANSFORMS, warp_tangent
from fixtures_formats import write_image_folder


def _theta(transform: str, t: torch.Tensor) -> torch.Tensor:
    """(1, 2, 3) float32 matrices of their parameterisation (normalised coordinates)."""
    zero, one = torch.zeros_like(t), torch.ones_like(t)
    rows = {
        "translate_x": [[one, zero, t], [zero, one, zero]],
        "translate_y": [[one, zero, zero], [zero, one, t]],
        "rotate": [[torch.cos(t), torch.sin(t), zero], [-torch.sin(t), torch.cos(t), zero]],
        "scale": [[1 - t, zero, zero], [zero, 1 - t, zero]],
    }[transform]
    return torch.stack([torch.stack(r) for r in rows]).unsqueeze(0)


def _sampled(img: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Bilinear sampling as their code does it: positions ((g + 1)/2)·(W − 1) of the
    align_corners grid, floored without gradient, indices reflected once at each side."""
    n, c, h, w = img.shape
    grid = F.affine_grid(theta.expand(n, 2, 3), [n, c, h, w], align_corners=True)
    x, y = (grid[..., 0] + 1) / 2 * (w - 1), (grid[..., 1] + 1) / 2 * (h - 1)
    x0, y0 = x.detach().floor(), y.detach().floor()
    fx, fy = x - x0, y - y0  # the fractional positions carry the gradient
    out = torch.zeros_like(img)
    for dy in (0, 1):
        for dx in (0, 1):
            weight = (fx if dx else 1 - fx) * (fy if dy else 1 - fy)
            xi = (w - 1) - ((w - 1) - (x0 + dx).abs()).abs()
            yi = (h - 1) - ((h - 1) - (y0 + dy).abs()).abs()
            index = (yi * w + xi).long().view(n, 1, h * w).expand(n, c, h * w)
            value = img.reshape(n, c, h * w).gather(2, index).view(n, c, h, w)
            out = out + value * weight.unsqueeze(1)
    return out


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("size", [(17, 23), (32, 32)])
def test_gruver_convention_is_the_derivative_of_their_sampling(transform, size):
    torch.manual_seed(0)
    img = torch.rand(2, 3, *size)
    # d/dt at t = 0 of every sampled value, by forward-mode autograd through the sampling
    _, expected = torch.func.jvp(lambda s: _sampled(img, _theta(transform, s)),
                                 (torch.zeros(()),), (torch.ones(()),))  # fmt: skip
    got = warp_tangent(img, transform, "gruver")
    scale = expected.abs().max()
    assert torch.allclose(got, expected, atol=1e-6 * scale), (got - expected).abs().max()
    symmetric = warp_tangent(img, transform, "symmetric")
    assert (symmetric - expected).norm() > 0.3 * expected.norm()  # a different derivative


def test_gruver_is_one_sided_pixel_by_pixel():
    """translate_x: at each pixel (interior rows) the forward or the backward difference,
    times (W − 1)/2; the symmetric derivative is their mean."""
    torch.manual_seed(1)
    img = torch.rand(1, 1, 9, 13)
    half = (13 - 1) / 2
    got = warp_tangent(img, "translate_x", "gruver")[0, 0, :, 1:-1] / half
    forward = img[0, 0, :, 2:] - img[0, 0, :, 1:-1]
    backward = img[0, 0, :, 1:-1] - img[0, 0, :, :-2]
    one_sided = torch.isclose(got, forward, atol=1e-5) | torch.isclose(got, backward, atol=1e-5)
    assert one_sided.all()
    symmetric = warp_tangent(img, "translate_x")[0, 0, :, 1:-1] / half
    assert torch.allclose(symmetric, (forward + backward) / 2, atol=1e-6)


def test_the_convention_through_the_cli(tmp_path):
    data = write_image_folder(tmp_path / "imgs", per_class=2, size=(32, 32))
    tables = {}
    for convention in ("symmetric", "gruver"):
        out = tmp_path / convention
        argv = ["measure", "--model", "vgg_cifar_maxpool", "--width", "0.125", "--data",
                f"folder:{data}", "--images", "4", "--no-noise", "--quiet",
                "--lie-derivative", "translate_x", "--no-lie-contributions",
                "--lie-derivative-convention", convention, "--out", str(out)]  # fmt: skip
        assert main(argv) == 0
        config = json.loads((out / "config.json").read_text())
        assert config["lie_derivative"]["convention"] == convention
        tables[convention] = [
            float(r["lie_translate_x"]) for r in read_csv(out / "sensitivity.csv")
        ]
    sym, gru = tables["symmetric"], tables["gruver"]
    assert len(sym) == len(gru) and all(a > 0 for a in sym[1:])
    assert any(abs(a - b) > 0.05 * a for a, b in zip(sym[1:], gru[1:], strict=True))


def test_report_sections_name_what_was_measured(tmp_path):
    """A TPS, a diffeo and a Lie-derivative run of the same model: three titles."""
    import re

    data = write_image_folder(tmp_path / "imgs", per_class=2, size=(32, 32))
    common = ["measure", "--model", "vgg_cifar_maxpool", "--width", "0.125", "--data",
              f"folder:{data}", "--images", "4", "--no-noise", "--quiet"]  # fmt: skip
    runs = {
        "tps": [],
        "diffeo": ["--deformation", "diffeo"],
        "lie": ["--lie-derivative", "rotate", "--no-lie-contributions"],
    }
    for name, extra in runs.items():
        assert main([*common, *extra, "--out", str(tmp_path / "results" / name)]) == 0
    report = tmp_path / "report.html"
    assert main(["report", str(tmp_path / "results"), "-o", str(report)]) == 0
    titles = re.findall(r"<h2>(.*?)</h2>", report.read_text())
    assert len(titles) == 3 and len(set(titles)) == 3, titles
    assert any(t.startswith("Sensitivity to TPS deformations (k = 3, C = 2):") for t in titles)
    assert any(t.startswith("Sensitivity to diffeomorphisms (T = ") for t in titles)
    assert any("and the Lie derivative (rotate)" in t for t in titles)
