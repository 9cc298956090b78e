"""Training augmentation's shifts, the pad-shift path, and the augmentation experiment."""

import json

import numpy as np
import pytest
import torch

from defstab.cli.main import main
from defstab.data.augment import random_crop_flip
from defstab.translate import measures
from defstab.translate.protocols import pad_shift_path


def coded_images(n, c=1, size=12):
    """Images whose every pixel value is unique (> 0), so a shift can be read back."""
    return (torch.arange(n * c * size * size, dtype=torch.float64) + 1).view(n, c, size, size)


def shifted(img: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Oracle: the content moved by (dx, dy) px, zeros where nothing moved in (a loop)."""
    out = np.zeros_like(img)
    h, w = img.shape[-2:]
    for y in range(h):
        for x in range(w):
            sy, sx = y - dy, x - dx
            if 0 <= sy < h and 0 <= sx < w:
                out[..., y, x] = img[..., sy, sx]
    return out


def read_shift(out: np.ndarray, img: np.ndarray, pad: int) -> list[tuple[int, int]]:
    return [
        (dx, dy)
        for dx in range(-pad - 2, pad + 3)
        for dy in range(-pad - 2, pad + 3)
        if np.array_equal(out, shifted(img, dx, dy))
    ]


@pytest.mark.parametrize("pad", [0, 4, 8])
def test_augmentation_draws_exactly_the_configured_shifts(pad):
    x = coded_images(400)
    out = random_crop_flip(x, torch.Generator().manual_seed(5), pad=pad, flip=False)
    found = [read_shift(o.numpy(), i.numpy(), pad) for o, i in zip(out, x, strict=True)]
    assert all(len(f) == 1 for f in found)  # every output is exactly one zero-filled shift
    drawn = {f[0] for f in found}
    axis = set(range(-pad, pad + 1))
    assert {d[0] for d in drawn} == axis and {d[1] for d in drawn} == axis
    # seeded: the same generator draws the same shifts, another seed others
    again = random_crop_flip(x, torch.Generator().manual_seed(5), pad=pad, flip=False)
    assert torch.equal(out, again)
    if pad:
        other = random_crop_flip(x, torch.Generator().manual_seed(6), pad=pad, flip=False)
        assert not torch.equal(out, other)


def test_training_uses_the_configured_shift(monkeypatch):
    import defstab.train.engine as engine
    from defstab.data.splits import train_test_splits
    from defstab.models import create_model
    from defstab.train import TrainConfig, train

    pads = []
    real = engine.random_crop_flip

    def spy(x, generator, pad=4, flip=True):
        pads.append(pad)
        return real(x, generator, pad=pad, flip=flip)

    monkeypatch.setattr(engine, "random_crop_flip", spy)
    tr, te = train_test_splits("synthetic:1", seed=0, per_class=4)
    model = create_model("vgg_cifar_maxpool", in_channels=1, width=0.125)
    cfg = TrainConfig(epochs=1, batch_size=20, augment=True, augment_shift=7, probe_images=4)
    train(model, tr, te, cfg, quiet=True)
    assert pads and set(pads) == {7}
    with pytest.raises(ValueError, match="augment_shift"):
        TrainConfig(augment_shift=-1)


def test_pad_shift_path_against_a_loop():
    x = coded_images(3, c=2, size=9)
    frames, shifts = pad_shift_path(x, 3)
    assert frames.shape == (3, 7, 2, 9, 9)
    assert shifts[:, 0].tolist() == list(range(-3, 4)) and shifts[:, 1].abs().sum() == 0
    for k, (dx, dy) in enumerate(shifts.tolist()):
        for i in range(3):
            np.testing.assert_array_equal(frames[i, k].numpy(), shifted(x[i].numpy(), dx, dy))
    vertical, vs = pad_shift_path(x, 2, "vertical")
    np.testing.assert_array_equal(vertical[1, 0].numpy(), shifted(x[1].numpy(), 0, -2))
    assert vs[:, 0].abs().sum() == 0
    with pytest.raises(ValueError, match="cannot be shifted"):
        pad_shift_path(x, 9)


def test_per_step_measures_and_the_trained_range_by_hand():
    # 2 images, 4 frames, 3 classes; top-1: image 0: 0 0 1 1; image 1: 2 0 0 0
    p = torch.tensor(
        [
            [[0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0.2, 0.7, 0.1], [0.3, 0.6, 0.1]],
            [[0.1, 0.2, 0.7], [0.5, 0.2, 0.3], [0.8, 0.1, 0.1], [0.6, 0.2, 0.2]],
        ]
    )
    steps = measures.per_step(p)
    np.testing.assert_allclose(steps["p_top1_change"], [0.5, 0.5, 0.0])
    # |Δp of the class top-1 before the step|: image 0: .1 .3 .1; image 1: .4 .3 .2
    np.testing.assert_allclose(steps["mac"], [0.25, 0.3, 0.15], atol=1e-6)
    assert steps["p_top1_change"].mean() == pytest.approx(measures.p_top1_change(p))
    assert steps["mac"].mean() == pytest.approx(measures.mac(p))
    shifts = torch.tensor([[d, 0] for d in range(-3, 4)])
    # steps −3→−2 … 2→3; inside ±2 are −2→−1, −1→0, 0→1, 1→2
    assert measures.steps_within(shifts, 2).tolist() == [False, True, True, True, True, False]
    assert not measures.steps_within(shifts, 0).any()


def test_train_cli_augment_shift(tmp_path):
    from test_cli_train import train_argv

    out = tmp_path / "run"
    assert main(train_argv(out, "--augment-shift", "6")) == 0
    cfg = json.loads((out / "config.json").read_text())["train"]
    assert cfg["augment"] is True and cfg["augment_shift"] == 6  # synthetic: on when asked
    assert main(train_argv(tmp_path / "x", "--augment-shift", "3", "--no-augment")) == 2


def test_augmentation_experiment_plan_shares_e1_networks():
    from defstab.experiments import ExperimentConfig
    from defstab.experiments.catalog import augmentation, pooling

    cfg = ExperimentConfig(name="augmentation", out="o", data="cifar10:/nowhere")
    runs = augmentation.plan(cfg)
    assert len(runs) == 3 * 3 * 3  # augmentations × architectures × seeds
    e1 = {r.network().digest() for r in pooling.plan(cfg, archs=augmentation.ARCHS)}
    by_aug = {}
    for r in runs:
        by_aug.setdefault(r.condition.split("/")[1], []).append(r)
    assert {r.network().digest() for r in by_aug["crop4"]} == e1
    assert all(r.train["augment"] is False for r in by_aug["none"])
    assert all(r.train["augment_shift"] == 8 for r in by_aug["shift8"])
    ranges = {a: {r.translate["pad_shift"]["train_range"] for r in rs} for a, rs in by_aug.items()}
    assert ranges == {"none": {0}, "crop4": {4}, "shift8": {8}}
    assert not e1 & {r.network().digest() for r in by_aug["none"] + by_aug["shift8"]}


def test_train_with_wide_shifts_then_translate_pad_shift(tmp_path):
    """A user's chain: train with shifts ±6 on CIFAR-10 batches, then measure the
    checkpoint on the pad-shift path (the augmentation's own transformation)."""
    from defstab.io.tables import read_csv
    from fixtures_formats import write_cifar_batches

    data = f"cifar10:{tmp_path / 'cifar'}"
    write_cifar_batches(tmp_path / "cifar", n_per_batch=8)
    run = tmp_path / "run"
    assert main(["train", "--model", "vgg_cifar_maxpool", "--width", "0.125", "--data", data,
                 "--epochs", "1", "--batch-size", "20", "--augment-shift", "6", "--quiet",
                 "--out", str(run)]) == 0  # fmt: skip
    assert json.loads((run / "config.json").read_text())["train"]["augment_shift"] == 6
    out = tmp_path / "t"
    assert main(["translate", "--run", str(run), "--data", data, "--images", "3", "--protocol",
                 "pad-shift,crop", "--steps", "3", "--quiet", "--out", str(out)]) == 0  # fmt: skip
    per_step = [r for r in read_csv(out / "per_step.csv") if r["protocol"] == "pad-shift"]
    assert len(per_step) == 3 * 7  # images × frames −3…+3
    assert [r["geometry"] for r in per_step[:7]] == [f"{d}x0" for d in range(-3, 4)]
    summary = {r["protocol"]: r for r in read_csv(out / "summary.csv")}
    assert 0.0 <= float(summary["pad-shift"]["p_top1_change"]) <= 1.0
    assert "pad-shift: the whole 32-px image" in (out / "config.json").read_text()
