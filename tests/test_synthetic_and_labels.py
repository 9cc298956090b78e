"""Synthetic deformation tasks, random labels and augmentation."""

import pytest
import torch

from defstab.data.augment import random_crop_flip
from defstab.data.labels import with_random_labels
from defstab.data.sources import ImageDataset
from defstab.data.synthetic import SyntheticTask, synthetic_task
from defstab.data.templates import font_digit_templates


def test_font_templates_are_distinct_digits():
    t = font_digit_templates()
    assert t.shape == (10, 1, 28, 28) and t.min() >= 0 and t.max() <= 1
    ink = t.flatten(1).sum(1)
    assert (ink > 20).all()  # every glyph is drawn
    diffs = torch.cdist(t.flatten(1), t.flatten(1))
    assert (diffs + torch.eye(10) * 1e9).min() > 2.0  # no two templates alike
    # centred: the ink's centre of mass is within 2 px of the image centre
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    cy = (t[:, 0] * ys).sum((1, 2)) / t[:, 0].sum((1, 2))
    cx = (t[:, 0] * xs).sum((1, 2)) / t[:, 0].sum((1, 2))
    assert (cy - 13.5).abs().max() < 2 and (cx - 13.5).abs().max() < 2


def test_synthetic_task_deterministic_and_classes_are_deformed_templates():
    task = synthetic_task(3.0, seed=4)
    a = task.split("train", 8)
    b = synthetic_task(3.0, seed=4).split("train", 8)
    assert torch.equal(a.pixels, b.pixels) and torch.equal(a.labels, b.labels)
    c = synthetic_task(3.0, seed=5).split("train", 8)
    assert not torch.equal(a.pixels, c.pixels)
    test = task.split("test", 8)
    assert not torch.equal(test.pixels, a.pixels)  # independent streams
    assert not torch.equal(task.split("train", 8, epoch=1).pixels, a.pixels)  # regenerated
    # at C = 1 every example is still nearest (L2) its own class's template; stronger
    # deformations of thin strokes can come closer to another digit (C = 3: ~60%)
    weak = synthetic_task(1.0, seed=4)
    w = weak.split("train", 20)
    x = w.images(range(len(w))).flatten(1)
    templ = weak.templates.flatten(1)
    assert (torch.cdist(x, templ).argmin(1) == w.labels).float().mean() > 0.98
    assert not torch.equal(x, templ[w.labels])  # deformed, not copies


def test_zero_strength_gives_templates_exactly():
    t = font_digit_templates()
    ds = SyntheticTask(t, strength=0.0).split("train", 2)
    expected = (t[ds.labels].clamp(0, 1) * 255).round().to(torch.uint8)
    assert torch.equal(ds.pixels, expected)


def test_synthetic_errors():
    with pytest.raises(ValueError, match="strength"):
        synthetic_task(-1.0)
    with pytest.raises(ValueError, match="mnist:PATH"):
        synthetic_task(1.0, templates="cifar:/x")


def test_mnist_templates(shared_data):
    task = synthetic_task(2.0, seed=0, templates=f"mnist:{shared_data / 'mnist'}")
    assert task.templates.shape == (10, 1, 28, 28) and task.name == "synthetic-mnist"


def test_random_labels_fixed_and_uniform():
    ds = ImageDataset(
        torch.zeros(20000, dtype=torch.long),
        [str(i) for i in range(10)],
        "z",
        pixels=torch.zeros(20000, 1, 2, 2, dtype=torch.uint8),
    )
    a, b = with_random_labels(ds, 3), with_random_labels(ds, 3)
    assert torch.equal(a.labels, b.labels)  # the same every time it is asked (every epoch)
    assert not torch.equal(a.labels, with_random_labels(ds, 4).labels)
    counts = torch.bincount(a.labels, minlength=10).float()
    # uniform: each count within 5 standard deviations of 2000
    assert ((counts - 2000).abs() < 5 * (20000 * 0.1 * 0.9) ** 0.5).all()
    chi2 = ((counts - 2000) ** 2 / 2000).sum()
    assert chi2 < 30  # 9 degrees of freedom: p ≈ 0.0004


def test_crop_flip_against_loop(gen):
    x = torch.rand(6, 3, 8, 8, generator=gen)
    out = random_crop_flip(x, torch.Generator().manual_seed(0), pad=2)
    g = torch.Generator().manual_seed(0)
    dy = torch.randint(0, 5, (6,), generator=g)
    dx = torch.randint(0, 5, (6,), generator=g)
    flip = torch.rand(6, generator=g) < 0.5
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(6):
        crop = padded[i, :, dy[i] : dy[i] + 8, dx[i] : dx[i] + 8]
        assert torch.equal(out[i], crop.flip(-1) if flip[i] else crop)
    same = random_crop_flip(x, torch.Generator().manual_seed(0), pad=0, flip=False)
    assert torch.equal(same, x)
