"""`defstab deform` draws every deformation family: the spatial field against the
resampling itself, and the chains a user runs — measure with diffeomorphisms, then draw
the saved ones; spatial, then draw each image's worst transform; the mistakes on the way."""

from __future__ import annotations

import pytest
import torch

from defstab.cli.main import main
from defstab.deform.warp import warp
from defstab.io.tables import read_csv
from defstab.translate.spatial import apply_transforms, get_spatial_preset, transform_fields


def _smooth(size=32):
    y, x = torch.meshgrid(torch.arange(size * 1.0), torch.arange(size * 1.0), indexing="ij")
    return (0.5 + 0.3 * torch.sin(x / 5) * torch.cos(y / 7)).expand(1, 3, size, size).clone()


def test_spatial_fields_are_what_the_resampling_does():
    """One resampling (PyTorch's preset): warping by the field is the transform itself.
    TensorFlow's two (rotate, then shift): the field of the whole map equals warping by
    the rotation's field, then the shift's."""
    image = _smooth()
    one, two = get_spatial_preset("engstrom-imagenet"), get_spatial_preset("engstrom-cifar")
    t = torch.tensor([[12.0, 2.0, -1.5]])
    expect = apply_transforms(image, t[:, None], one)[:, 0]
    got = warp(image, transform_fields(t, one, 32).float(), padding="zeros")
    torch.testing.assert_close(got, expect, rtol=0, atol=1e-5)
    rotated = warp(image, transform_fields(torch.tensor([[12.0, 0, 0]]), one, 32).float(),
                   padding="zeros")  # fmt: skip
    shifted = warp(rotated, transform_fields(torch.tensor([[0.0, 2, -1.5]]), one, 32).float(),
                   padding="zeros")  # fmt: skip
    expect = apply_transforms(image, t[:, None], two)[:, 0]
    torch.testing.assert_close(shifted[..., 4:-4, 4:-4], expect[..., 4:-4, 4:-4], rtol=0,
                               atol=1e-5)  # fmt: skip
    # the two-step field composes them: u(p) = −t + u_rotation(p − t), exactly at integers
    t = torch.tensor([[12.0, 2.0, -1.0]])
    whole = transform_fields(t, two, 32)[0]
    rotation = transform_fields(torch.tensor([[12.0, 0, 0]]), one, 32)[0]
    expect = torch.tensor([-2.0, 1.0], dtype=torch.float64) + rotation[1:31, 0:30]
    torch.testing.assert_close(whole[0:30, 2:32], expect, rtol=0, atol=1e-12)
    # a pure shift moves content by +t: output pixel p reads p − t
    field = transform_fields(torch.tensor([[0.0, 3.0, -2.0]]), one, 8)
    assert torch.equal(field[0, 4, 4], torch.tensor([-3.0, 2.0], dtype=torch.float64))


def _image_files(tmp_path, n=4, size=32):
    from fixtures_formats import write_image_folder

    root = write_image_folder(tmp_path / "imgs", classes=("a", "b"), per_class=n // 2,
                              size=(size, size))  # fmt: skip
    return root


def test_measure_diffeo_then_draw_them(tmp_path, capsys):
    from defstab.data.sources import load_data
    from defstab.data.spec import DataSpec

    root = _image_files(tmp_path)
    data = f"folder:{root}"
    out = tmp_path / "m"
    assert main(["measure", "--model", "vgg_cifar_maxpool", "--width", "0.125", "--data", data,
                 "--images", "4", "--deformation", "diffeo",
                 "--displacement", "2", "--quiet", "--out", str(out)]) == 0  # fmt: skip
    items = [int(r["image"]) for r in read_csv(out / "per_image.csv") if r["layer"] == "input"]
    paths = load_data(DataSpec.parse(data), "test").paths
    files = [str(paths[i]) for i in items]
    figure = tmp_path / "drawn.png"
    assert main(["deform", *files, "--size", "0", "--displacements",
                 str(out / "deformations.pt"), "-o", str(figure)]) == 0  # fmt: skip
    assert figure.stat().st_size > 10_000
    # the wrong number of images: one sentence
    code = main(["deform", *files[:3], "--size", "0", "--displacements",
                 str(out / "deformations.pt"), "-o", str(tmp_path / "x.png")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "holds 4 diffeomorphisms; give 4 images" in err
    assert not (tmp_path / "x.png").exists()


def test_spatial_then_draw_each_worst_transform(tmp_path, capsys):
    from defstab.data.sources import load_data
    from defstab.data.spec import DataSpec

    root = _image_files(tmp_path)
    data = f"folder:{root}"
    out = tmp_path / "sp"
    assert main(["spatial", "--model", "vgg_cifar_maxpool", "--width", "0.125", "--data", data,
                 "--images", "4", "--quiet", "--out", str(out)]) == 0  # fmt: skip
    per = read_csv(out / "per_image.csv")
    paths = load_data(DataSpec.parse(data), "test").paths
    files = [str(paths[int(r["image"])]) for r in per]
    figure = tmp_path / "worst.svg"
    assert main(["deform", *files, "--size", "0", "--kind", "spatial", "--transforms",
                 str(out / "per_image.csv"), "-o", str(figure)]) == 0  # fmt: skip
    svg = figure.read_text()
    worst = per[0]
    caption = f"{float(worst['worst_angle']):+.1f}°, ({float(worst['worst_dx']):+.1f}, "
    assert caption in svg  # each panel names the transform it draws
    random_draw = tmp_path / "random.png"
    assert main(["deform", *files[:2], "--size", "0", "--kind", "spatial",
                 "-o", str(random_draw)]) == 0  # fmt: skip
    assert main(["deform", *files[:2], "--size", "0", "--kind", "diffeo", "--temperature",
                 "0.001", "-o", str(tmp_path / "d.png")]) == 0  # fmt: skip
    capsys.readouterr()
    for extra, message in [
        (["--transforms", str(out / "summary.csv")], "is not the per_image.csv of 'defstab"),
        (["--transforms", str(tmp_path / "none.csv")], "does not exist"),
    ]:
        code = main(["deform", *files, "--size", "0", "--kind", "spatial", *extra,
                     "-o", str(tmp_path / "y.png")])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err


def test_transform_fields_sign_of_rotation():
    """A positive angle turns content as apply_transforms does: a bright dot right of the
    centre lands where the field says it is read from."""
    preset = get_spatial_preset("engstrom-imagenet")
    image = torch.zeros(1, 1, 15, 15)
    image[0, 0, 7, 12] = 1.0
    turned = apply_transforms(image.expand(1, 3, 15, 15).clone(),
                              torch.tensor([[[90.0, 0.0, 0.0]]]), preset)[0, 0, 0]  # fmt: skip
    y, x = divmod(int(turned.argmax()), 15)
    field = transform_fields(torch.tensor([[90.0, 0.0, 0.0]]), preset, 15)[0, y, x]
    assert (x + field[0].item(), y + field[1].item()) == pytest.approx((12, 7), abs=1e-9)
