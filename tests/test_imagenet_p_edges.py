"""ImageNet-P at its edges: a non-square image is perturbed whole and cropped after, as
``make_imagenet_p.py`` does (checked against that procedure restated with torchvision on
the whole image); rotations and scalings turn about the 2018 torchvision's centre by
default (checked against PIL with that torchvision's matrix on real ImageNet images); and
the command reads real non-square files that way."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.transforms import InterpolationMode

from defstab.cli.main import main
from defstab.data.stream import PaddedImages
from defstab.io.images import read_image
from defstab.translate.sequences import get_sequence_preset, make_sequence, tilt_matrix

PRESET = get_sequence_preset("imagenet-p")


def _their_frame(x, perturbation, value, centre):
    """One frame as make_imagenet_p.py makes it: the perturbation of the whole image, then
    CenterCrop(224) — here with torchvision's tensor functions."""
    h, w = x.shape[-2:]
    about = [w / 2 + 0.5, h / 2 + 0.5] if centre == "authors" else None
    bilinear = InterpolationMode.BILINEAR
    if perturbation == "translate":
        out = TF.affine(x, angle=0.0, translate=[int(value), 0], scale=1.0, shear=[0.0],
                        interpolation=InterpolationMode.NEAREST, fill=0.0)  # fmt: skip
    elif perturbation == "rotate":
        out = TF.affine(x, angle=value, translate=[0, 0], scale=1.0, shear=[0.0], center=about,
                        interpolation=bilinear, fill=0.0)  # fmt: skip
    elif perturbation == "scale":
        out = TF.affine(x, angle=0.0, translate=[0, 0], scale=value, shear=[0.0], center=about,
                        interpolation=bilinear, fill=0.0)  # fmt: skip
    else:  # cv2.warpPerspective by its four corners (cv2's pixel centres at integers)
        mat = tilt_matrix(value, w, h)
        corners = [[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]]
        src = torch.tensor([[cx, cy, 1.0] for cx, cy in corners], dtype=torch.float64)
        dst = src @ mat.T
        ends = (dst[:, :2] / dst[:, 2:] + 0.5).tolist()
        starts = [[cx + 0.5, cy + 0.5] for cx, cy in corners]
        out = TF.perspective(x, starts, ends, bilinear, fill=0.0)
    return TF.center_crop(out, [224, 224])


@pytest.mark.parametrize("shape", [(256, 341), (301, 256), (256, 343)])
@pytest.mark.parametrize("perturbation", ["translate", "rotate", "scale", "tilt"])
@pytest.mark.parametrize("centre", ["authors", "modern"])
def test_a_non_square_image_is_perturbed_whole_then_cropped(shape, perturbation, centre):
    x = torch.rand(1, 3, *shape, generator=torch.Generator().manual_seed(sum(shape)))
    frames, values = make_sequence(x, perturbation, PRESET, centre=centre)
    assert frames.shape[-2:] == (224, 224)
    for j in (0, len(values) // 3, len(values) - 1):
        expected = _their_frame(x, perturbation, float(values[j]), centre)
        assert torch.allclose(frames[0, j], expected[0], atol=2e-4), (j, perturbation)


def test_the_old_square_first_crop_would_differ():
    """Cropping the square before perturbing loses what a zoom-out brings in."""
    x = torch.rand(1, 3, 256, 341, generator=torch.Generator().manual_seed(3))
    whole, values = make_sequence(x, "scale", PRESET)
    square, _ = make_sequence(TF.center_crop(x, [256, 256]), "scale", PRESET)
    first = 0  # scale 0.40: the crop shows the whole image, shrunk
    assert float(values[first]) == pytest.approx(0.40)
    assert (whole[0, first] - square[0, first]).abs().mean() > 0.05


def test_images_of_different_sizes_warp_together_as_alone():
    g = torch.Generator().manual_seed(5)
    images = [torch.rand(3, 256, 341, generator=g), torch.rand(3, 300, 256, generator=g),
              torch.rand(3, 256, 256, generator=g)]  # fmt: skip
    padded = PaddedImages.of(images)
    for perturbation in ("translate", "rotate", "scale", "tilt"):
        together, _ = make_sequence(padded, perturbation, PRESET)
        for i, x in enumerate(images):
            alone, _ = make_sequence(x[None], perturbation, PRESET)
            assert torch.allclose(together[i], alone[0], atol=1e-4), (perturbation, i)


def _pil_2018(img: Image.Image, angle: float, scale: float) -> Image.Image:
    """torchvision 0.2's affine on a PIL image: its inverse matrix about
    (w·0.5 + 0.5, h·0.5 + 0.5), applied by PIL's transform (pixel centres at x + ½)."""
    w, h = img.size
    cx, cy = w * 0.5 + 0.5, h * 0.5 + 0.5
    a = math.radians(angle)
    m = [math.cos(a) / scale, math.sin(a) / scale, 0.0,
         -math.sin(a) / scale, math.cos(a) / scale, 0.0]  # fmt: skip
    m[2] = m[0] * -cx + m[1] * -cy + cx
    m[5] = m[3] * -cx + m[4] * -cy + cy
    return img.transform(img.size, Image.AFFINE, m, Image.BILINEAR, fillcolor=0)


def test_the_authors_centre_is_the_published_videos_centre(imagenet_samples):
    files = sorted(p for p in imagenet_samples.rglob("*") if p.is_file())[:6]
    share = {"authors": [], "modern": []}
    for path in files:
        x = read_image(path, 256, crop=False)  # Resize(256): the aspect kept
        pil = Image.fromarray((x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
        x = torch.from_numpy(np.asarray(pil).copy()).permute(2, 0, 1).float()[None] / 255
        for perturbation, j in (("rotate", 20), ("scale", 10)):
            angle, scale = (-15.0 + j, 1.0) if perturbation == "rotate" else (0.0, 0.4 + 0.025 * j)
            ref = TF.center_crop(TF.pil_to_tensor(_pil_2018(pil, angle, scale)), [224, 224])
            for centre in share:
                frames, _ = make_sequence(x, perturbation, PRESET, centre=centre)
                diff = (frames[0, j] - ref.float() / 255).abs()
                share[centre].append(float((diff > 2 / 255).float().mean()))
    # measured on these images: about 0.3% (rounding to 8 bits) against about 12%
    assert np.mean(share["authors"]) < 0.02
    assert np.mean(share["modern"]) > 3 * np.mean(share["authors"]) + 0.03


FLAT_NET = """
import torch
from torch import nn


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 5, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 5))
"""


def test_perturb_reads_non_square_files_whole(tmp_path):
    root = tmp_path / "imgs"
    rng = np.random.default_rng(0)
    for c, size in (("a", (300, 400)), ("b", (400, 300))):  # W×H: both non-square
        (root / c).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(
                root / c / f"{i}.jpg"
            )
    (tmp_path / "net.py").write_text(FLAT_NET)
    results = {}
    for centre in ("authors", "modern"):
        out = tmp_path / centre
        argv = ["perturb", "--model", f"{tmp_path / 'net.py'}:net", "--data", f"folder:{root}",
                "--images", "4", "--perturbations", "rotate,scale", "--normalize", "none",
                "--centre", centre, "--quiet", "--out", str(out)]  # fmt: skip
        assert main(argv) == 0
        config = json.loads((out / "config.json").read_text())
        assert config["centre"] == centre and "aspect kept" in config["source_images"]
        results[centre] = (out / "per_video.csv").read_text()
    assert results["authors"].count("\n") == results["modern"].count("\n") == 9
