"""Petrini et al.'s diffeomorphisms against their definition: the field against a loop over
the sine basis, the deformed images against a port of their ``scalar_field`` + ``remap``,
the mean squared displacement against its closed form, their temperature range and
typical displacement; and ``defstab measure --deformation diffeo`` through the CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch

from defstab.cli.main import main
from defstab.deform import DeformationSpec
from defstab.deform.diffeo import (
    apply_diffeo,
    diffeo_field,
    mode_weights,
    sample_diffeo_coefficients,
    temperature_range,
    typical_displacement,
    typical_temperature,
)
from defstab.io.tables import read_csv


def test_modes_are_the_quarter_disk_below_c_plus_half():
    w = mode_weights(3)
    kept = {(i + 1, j + 1) for i in range(3) for j in range(3) if w[i, j] > 0}
    assert kept == {(i, j) for i in range(1, 4) for j in range(1, 4) if i * i + j * j < 12.25}
    assert (3, 2) not in kept and (2, 2) in kept and len(kept) == 6
    assert w[0, 1] == pytest.approx(1 / math.sqrt(5))


def test_field_against_a_loop_over_the_sine_basis_non_square():
    coeffs = sample_diffeo_coefficients(2, 4, torch.Generator().manual_seed(0)).double()
    h, w, t = 7, 11, 0.01
    field = diffeo_field(coeffs, (h, w), t)
    for n in range(2):
        for y in range(h):
            for x in range(w):
                u = v = 0.0
                for i in range(1, 5):
                    for j in range(1, 5):
                        basis = math.sin(math.pi * i * x / (w - 1)) * math.sin(
                            math.pi * j * y / (h - 1)
                        )
                        u += float(coeffs[n, 0, i - 1, j - 1]) * basis
                        v += float(coeffs[n, 1, i - 1, j - 1]) * basis
                # output → input: minus the displacement, x scaled by W, y by H
                assert field[n, y, x, 0].item() == pytest.approx(-math.sqrt(t) * w * u, abs=1e-12)
                assert field[n, y, x, 1].item() == pytest.approx(-math.sqrt(t) * h * v, abs=1e-12)
    assert field[:, 0].abs().max() < 1e-12 and field[:, :, -1].abs().max() < 1e-12  # border


def _their_deform(image, coeffs_u, coeffs_v, t):
    """pcsl-epfl/diffeomorphism's ``scalar_field`` (given c_ij) and linear ``remap``."""
    n = image.shape[-1]
    c = coeffs_u.shape[-1]
    x = torch.linspace(0, 1, n, dtype=torch.float64)
    k = torch.arange(1, c + 1, dtype=torch.float64)
    s = torch.sin(math.pi * x[:, None] * k[None, :])
    u = torch.einsum("ij,xi,yj->yx", coeffs_u, s, s)
    v = torch.einsum("ij,xi,yj->yx", coeffs_v, s, s)
    dx, dy = t**0.5 * u * n, t**0.5 * v * n
    yy, xx = torch.meshgrid(torch.arange(n, dtype=torch.float64),
                            torch.arange(n, dtype=torch.float64), indexing="ij")  # fmt: skip
    xn, yn = (xx - dx).clamp(0, n - 1), (yy - dy).clamp(0, n - 1)
    xf, yf, xc, yc = xn.floor().long(), yn.floor().long(), xn.ceil().long(), yn.ceil().long()
    xv, yv = xn - xf, yn - yf
    return ((1 - yv) * (1 - xv) * image[..., yf, xf] + (1 - yv) * xv * image[..., yf, xc]
            + yv * (1 - xv) * image[..., yc, xf] + yv * xv * image[..., yc, xc])  # fmt: skip


@pytest.mark.parametrize("cut,t", [(3, 0.002), (5, 0.01)])
def test_same_coefficients_same_images_as_their_deform(cut, t):
    images = torch.rand(3, 2, 20, 20, generator=torch.Generator().manual_seed(cut),
                        dtype=torch.float64)  # fmt: skip
    coeffs = sample_diffeo_coefficients(3, cut, torch.Generator().manual_seed(1)).double()
    ours = apply_diffeo(images, coeffs, t)
    for i in range(3):
        theirs = _their_deform(images[i], coeffs[i, 0], coeffs[i, 1], t)
        assert torch.allclose(ours[i], theirs, atol=1e-10)
    assert (ours - images).abs().max() > 1e-3  # it did move


def test_mean_squared_displacement_against_its_closed_form():
    n, cut, t = 24, 4, 0.003
    coeffs = sample_diffeo_coefficients(4000, cut, torch.Generator().manual_seed(2))
    field = diffeo_field(coeffs, (n, n), t)  # (N, n, n, 2)
    empirical = field.pow(2).sum(-1).mean(0)  # (n, n): E‖τ(p)‖² per pixel
    xs = torch.linspace(0, 1, n, dtype=torch.float64)
    k = torch.arange(1, cut + 1, dtype=torch.float64)
    s2 = torch.sin(math.pi * xs[:, None] * k) ** 2  # (n, c)
    w2 = mode_weights(cut) ** 2  # E[C_ij²] = 1/(i² + j²) on kept modes
    # E[u(y, x)²] = Σ_ij (1/r²) sin²(π i x̃) sin²(π j ỹ); two components, each × T·n²
    per_component = torch.einsum("ij,xi,yj->yx", w2, s2, s2)
    closed = 2 * t * n**2 * per_component
    inner = closed > closed.max() * 0.2
    assert torch.allclose(empirical[inner], closed[inner], rtol=0.08)
    # δ is the root mean square displacement for large c: already within 25% at c = 4
    rms = math.sqrt(float(closed.mean()))
    assert typical_displacement(t, cut, n) == pytest.approx(rms, rel=0.25)


def test_temperature_range_and_typical_displacement_as_their_code():
    n, c = 32, 3
    t1, t2 = temperature_range(n, c)
    assert t1 == pytest.approx(1 / (math.pi * n**2 * math.log(c)))
    assert t2 == pytest.approx(4 / (math.pi**3 * c**2 * math.log(c)))
    assert typical_displacement(t1, c, n) == pytest.approx(0.5)  # half a pixel at T_min
    assert typical_displacement(1e-3, c, n) == pytest.approx(n * (math.pi * 1e-3 * math.log(c))
                                                             ** 0.5 / 2)  # fmt: skip
    assert typical_displacement(typical_temperature(1.7, 5, 224), 5, 224) == pytest.approx(1.7)
    with pytest.raises(ValueError, match="c ≥ 2"):
        temperature_range(32, 1)


def test_spec_records_replays_and_refuses():
    spec = DeformationSpec.diffeo(32, cut=3, displacement=1.0)
    assert spec.typical_displacement(32) == pytest.approx(1.0)
    assert spec.padding == "border"  # their coordinates are clamped
    assert DeformationSpec.from_record(spec.record()) == spec
    assert spec.sample(5, torch.Generator().manual_seed(0)).shape == (5, 2, 3, 3)
    with pytest.raises(ValueError, match="temperature T must be a positive"):
        DeformationSpec(kind="diffeo", temperature=0.0, cut=3)
    with pytest.raises(ValueError, match="cut-off c must be an integer ≥ 1"):
        DeformationSpec(kind="diffeo", temperature=1e-3, cut=0)
    with pytest.raises(ValueError, match="kind must be one of"):
        DeformationSpec(kind="rotation")
    with pytest.raises(ValueError, match="not both"):
        DeformationSpec.diffeo(32, temperature=1e-3, displacement=1.0)


def test_measure_diffeo_through_the_cli_replays_bit_for_bit(tmp_path, tiny_cifar, capsys):
    common = ["measure", "--model", "vgg_cifar_maxpool", "--width", "0.125", "--data",
              tiny_cifar, "--images", "8", "--quiet"]  # fmt: skip
    first = tmp_path / "d1"
    assert main([*common, "--deformation", "diffeo", "--displacement", "1.5", "--cut", "4",
                 "--out", str(first)]) == 0  # fmt: skip
    cfg = json.loads((first / "config.json").read_text())["deformation"]
    assert cfg["kind"] == "diffeo" and cfg["cut"] == 4
    assert cfg["typical_displacement_px"] == pytest.approx(1.5)
    assert cfg["temperature"] == pytest.approx(typical_temperature(1.5, 4, 32))
    rows = read_csv(first / "sensitivity.csv")
    assert float(rows[0]["relative_stability"]) == pytest.approx(1.0)  # input: matched noise
    again = tmp_path / "d2"
    assert main([*common, "--deformations", str(first / "deformations.pt"),
                 "--out", str(again)]) == 0  # fmt: skip
    assert [r["mean"] for r in read_csv(again / "sensitivity.csv")] == [r["mean"] for r in rows]
    capsys.readouterr()
    for extra, message in [
        (["--cut", "4"], "--cut has no effect here: it applies with --deformation diffeo"),
        (
            ["--deformation", "diffeo", "--grid", "3"],
            "--grid has no effect here: it applies with --deformation tps",
        ),
        (["--deformation", "diffeo", "--temperature", "0.001", "--displacement", "1"], "not both"),
        (["--deformation", "diffeo", "--worst-case"], "search TPS deformations"),
        (["--deformation", "diffeo", "--temperature", "0"], "--temperature must be positive"),
    ]:
        assert main([*common, *extra, "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (extra, err)


def test_relative_stability_is_the_papers_mean_formula_on_identical_deformed_images():
    """R_f of measure_sensitivity against Petrini's mean formula computed by hand with a
    forward hook, on the same diffeomorphisms and the same matched noise (redrawn from the
    same generator in the same order: the coefficients first, then the noise)."""
    from defstab.measure import measure_sensitivity
    from defstab.models import create_model

    model = create_model("vgg_cifar_maxpool", width=0.25, seed=3).eval()
    x = torch.rand(10, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    spec = DeformationSpec.diffeo(32, cut=3, displacement=1.0)
    res = measure_sensitivity(model, x, spec, generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    coeffs = spec.sample(10, g)
    eta = torch.randn((10, 3, 32, 32), generator=g)
    tx = apply_diffeo(x, coeffs, spec.temperature)
    scale = (tx - x).flatten(1).norm(dim=1) / eta.flatten(1).norm(dim=1)
    noisy = x + eta * scale.view(-1, 1, 1, 1)
    seen = {}
    layer = dict(model.named_modules())[res.layers[6]]
    hook = layer.register_forward_hook(lambda m, i, o: seen.__setitem__("out", o.flatten(1)))
    with torch.no_grad():
        outs = [(model(v), seen["out"].double())[1] for v in (x, tx, noisy)]
    hook.remove()
    d = (outs[1] - outs[0]).pow(2).sum(1).mean()  # ⟨‖f(τx) − f(x)‖²⟩
    gn = (outs[2] - outs[0]).pow(2).sum(1).mean()  # ⟨‖f(x + η) − f(x)‖²⟩
    assert float(res.relative_stability[6]) == pytest.approx(float(d / gn), rel=1e-5)
    pair = torch.cdist(outs[0], outs[0]).pow(2)
    mean_pairs = pair.sum() / (10 * 9)  # over the 45 pairs i < j, each counted twice
    assert float(res.deformation_stability[6]) == pytest.approx(float(d / mean_pairs), rel=1e-5)


def test_median_aggregate_is_their_results_codes_formula(tmp_path, tiny_cifar, capsys):
    """relative_stability_median: Σ_features median over images of (Δf)², τ over η,
    against the same computed by hand (numpy's median, the mean of the middle two)."""
    import numpy as np

    from defstab.measure import measure_sensitivity
    from defstab.models import create_model

    model = create_model("vgg_cifar_maxpool", width=0.25, seed=3).eval()
    x = torch.rand(10, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    spec = DeformationSpec.diffeo(32, cut=3, displacement=1.0)
    res = measure_sensitivity(model, x, spec, generator=torch.Generator().manual_seed(5),
                              aggregate="median")  # fmt: skip
    g = torch.Generator().manual_seed(5)
    coeffs, eta = spec.sample(10, g), torch.randn((10, 3, 32, 32), generator=g)
    tx = apply_diffeo(x, coeffs, spec.temperature)
    noisy = x + eta * ((tx - x).flatten(1).norm(dim=1) / eta.flatten(1).norm(dim=1)).view(
        -1, 1, 1, 1
    )
    seen = {}
    layer = dict(model.named_modules())[res.layers[4]]
    hook = layer.register_forward_hook(lambda m, i, o: seen.__setitem__("out", o.flatten(1)))
    with torch.no_grad():
        f0, ft, fn = [(model(v), seen["out"].double().numpy())[1] for v in (x, tx, noisy)]
    hook.remove()
    expected = np.median((ft - f0) ** 2, axis=0).sum() / np.median((fn - f0) ** 2, axis=0).sum()
    assert float(res.relative_stability_median[4]) == pytest.approx(expected, rel=1e-4)
    # and it is not the mean formula
    assert float(res.relative_stability[4]) != pytest.approx(expected, rel=1e-2)
    common = ["measure", "--model", "vgg_cifar_maxpool", "--width", "0.125", "--data",
              tiny_cifar, "--images", "8", "--quiet", "--deformation", "diffeo"]  # fmt: skip
    assert main([*common, "--aggregate", "median", "--out", str(tmp_path / "m")]) == 0
    row = read_csv(tmp_path / "m" / "sensitivity.csv")[3]
    assert float(row["relative_stability_median"]) > 0 and float(row["relative_stability"]) > 0
    capsys.readouterr()
    assert main([*common, "--aggregate", "median", "--no-noise",
                 "--out", str(tmp_path / "bad")]) == 2  # fmt: skip
    assert "--aggregate median needs" in capsys.readouterr().err
    with pytest.raises(ValueError, match="GiB of squared differences"):
        measure_sensitivity(model, x, spec, aggregate="median", store_bytes=1000)
