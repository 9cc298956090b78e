"""Translation protocols and measures: invariant nets, hand-made flips, loops, geometry."""

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from defstab.translate import (
    classify_frames,
    consistency,
    crop_path,
    embed_path,
    jaggedness,
    layer_shift_analysis,
    mac,
    make_frames,
    p_top1_change,
    scale_path,
    subpixel_path,
)
from defstab.translate.measures import accuracy_along_path


class CircularNet(nn.Module):
    """Circular padding, stride 1, global average pooling: exactly shift-invariant."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, padding=1, padding_mode="circular")
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(8, 3, 3, 3, generator=g))
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean((2, 3)))


class DotPosition(nn.Module):
    """Class = (column of the brightest pixel // 4) % 2, nearly one-hot."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        col = x.sum((1, 2)).argmax(-1)
        cls = (col // 4) % 2
        return nn.functional.one_hot(cls, 2).float() * 50.0


def test_circular_invariant_net_never_changes(gen):
    x = torch.rand(6, 3, 16, 16, generator=gen)
    frames = torch.stack([torch.roll(x, k, dims=-1) for k in range(10)], dim=1)
    probs = classify_frames(CircularNet(), frames)
    assert p_top1_change(probs) == 0.0
    assert mac(probs) < 1e-6  # summation order only
    assert consistency(probs) == 1.0


def test_hand_made_flips_at_known_shifts():
    img = torch.zeros(1, 3, 4, 4)
    img[..., 1, 1] = 1.0  # a dot at column 1 of a 4×4 object
    frames, pos = embed_path(img, 4, 40, steps=20, start=(0, 10))
    probs = classify_frames(DotPosition(), frames)
    cols = pos[:, 0] + 1  # the dot's column on the canvas
    cls = (cols // 4) % 2
    flips = int((cls[1:] != cls[:-1]).sum())
    assert flips == 5  # columns 1..21 cross 4, 8, 12, 16, 20
    assert p_top1_change(probs) == pytest.approx(flips / 20)
    assert mac(probs) == pytest.approx(flips / 20, abs=1e-6)
    labels = torch.tensor([0])
    torch.testing.assert_close(accuracy_along_path(probs, labels), (cls == 0).float())


def loop_measures(probs, labels):
    n, s, _ = probs.shape
    changes, abs_changes, jag, agree, pairs = 0, [], 0, 0, 0
    for i in range(n):
        for k in range(s - 1):
            a, b = probs[i, k], probs[i, k + 1]
            c = int(a.argmax())
            changes += int(c != int(b.argmax()))
            abs_changes.append(abs(float(b[c] - a[c])))
            in_a = labels[i] in a.topk(5).indices.tolist()
            in_b = labels[i] in b.topk(5).indices.tolist()
            jag += int(in_a != in_b)
        for k, m in itertools.permutations(range(s), 2):
            agree += int(probs[i, k].argmax() == probs[i, m].argmax())
            pairs += 1
    return changes / (n * (s - 1)), sum(abs_changes) / len(abs_changes), jag / n, agree / pairs


def test_measures_agree_with_loops(gen):
    probs = torch.softmax(torch.randn(7, 9, 12, generator=gen) * 2, -1)
    labels = torch.randint(0, 12, (7,), generator=gen)
    pc, m, j, c = loop_measures(probs, labels)
    assert p_top1_change(probs) == pytest.approx(pc)
    assert mac(probs) == pytest.approx(m, rel=1e-6)
    assert jaggedness(probs, labels) == pytest.approx(j)
    assert consistency(probs) == pytest.approx(c)


def test_embed_geometry_black_and_inpaint():
    img = torch.ones(2, 3, 10, 10)
    frames, pos = embed_path(img, 6, 24, 5, direction="diagonal")
    assert frames.shape == (2, 6, 3, 24, 24)
    for k, (x, y) in enumerate(pos.tolist()):
        assert (x, y) == (pos[0, 0].item() + k, pos[0, 1].item() + k)
        f = frames[0, k]
        assert torch.allclose(f[:, y : y + 6, x : x + 6], torch.tensor(1.0))
        assert f.sum() == pytest.approx(3 * 36)  # black everywhere else
    inpainted, _ = embed_path(img * 0.5, 6, 24, 5, background="inpaint")
    assert torch.allclose(inpainted, torch.tensor(0.5), atol=1e-5)  # a constant extends as itself


def test_crop_and_scale_geometry(gen):
    img = torch.rand(1, 3, 20, 30, generator=gen)
    frames, off = crop_path(img, 16, 6)
    for k, (x, y) in enumerate(off.tolist()):
        assert torch.equal(frames[0, k], img[0, :, y : y + 16, x : x + 16])
    x0, y0 = off[0].tolist()
    common = img[0, :, y0 : y0 + 16, x0 + 6 : x0 + 16]  # inside every crop of the path
    for k in range(7):
        assert torch.equal(frames[0, k, :, :, 6 - k : 16 - k], common)
    sq, sizes = scale_path(torch.ones(1, 1, 8, 8), 20, 6, 4)
    assert sizes.tolist() == [6, 7, 8, 9, 10]
    for k, s in enumerate(sizes.tolist()):
        ys, xs = torch.nonzero(sq[0, k, 0] > 0.5, as_tuple=True)
        assert ys.max() - ys.min() + 1 == s and xs.max() - xs.min() + 1 == s


def test_subpixel_integer_step_is_a_shift(gen):
    img = torch.rand(1, 1, 8, 12, generator=gen)
    frames, shifts = subpixel_path(img, 1.0, 3, padding="zeros")
    torch.testing.assert_close(frames[0, 2, 0, :, 2:], img[0, 0, :, :-2], atol=1e-5, rtol=0)
    assert shifts[:, 0].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_layer_analysis_sampling_theorem(gen):
    """Average pooling (stride 2) shifts exactly for even shifts, not for odd ones."""
    net = nn.Sequential(nn.Identity(), nn.AvgPool2d(2))
    img = torch.rand(4, 3, 16, 40, generator=gen)
    rows = layer_shift_analysis(net, img, crop=16, max_shift=6, layers=["0", "1"])
    ident = [r for r in rows if r["layer"] == "0"]
    pool = [r for r in rows if r["layer"] == "1"]
    assert {r["stride"] for r in ident} == {1} and {r["stride"] for r in pool} == {2}
    assert all(r["equivariance"] < 1e-6 for r in ident)
    even = [r["equivariance"] for r in pool if r["shift"] % 2 == 0]
    odd = [r["equivariance"] for r in pool if r["shift"] % 2 == 1]
    assert max(even) < 1e-6 and min(odd) > 1e-3
    assert all(r["multiple_of_stride"] == int(r["shift"] % 2 == 0) for r in pool)


@pytest.mark.parametrize(
    "fn,match",
    [
        (lambda x: embed_path(x, 20, 24, 8), "smaller than the object"),
        (lambda x: embed_path(x, 8, 24, 0), "steps"),
        (lambda x: crop_path(x, 16, 40), "too small"),
        (lambda x: scale_path(x, 10, 8, 5), "smaller than the largest"),
        (lambda x: make_frames("wiggle", x, 2, canvas=16), "unknown protocol"),
        (lambda x: embed_path(x, 8, 24, 2, direction="up"), "direction"),
        (lambda x: embed_path(x, 8, 24, 2, background="noise"), "background"),
    ],
)
def test_bad_input(fn, match):
    with pytest.raises(ValueError, match=match):
        fn(torch.rand(1, 3, 16, 16))


def test_translate_cli_round_trip(tmp_path, capsys):
    from defstab.cli.main import main
    from defstab.io.tables import read_csv
    from fixtures_formats import write_image_folder

    folder = write_image_folder(tmp_path / "imgs", per_class=3, size=(40, 40))
    out = tmp_path / "t"
    assert (
        main(
            [
                "translate",
                "--model",
                "vgg_cifar_blurpool",
                "--width",
                "0.25",
                "--data",
                f"folder:{folder}",
                "--images",
                "5",
                "--protocol",
                "embed,crop,scale",
                "--steps",
                "4",
                "--object-size",
                "12,16",
                "--layers",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rows = read_csv(out / "summary.csv")
    assert [r["protocol"] for r in rows] == ["embed", "embed", "crop", "scale", "scale"]
    assert {"p_top1_change", "mac", "jaggedness", "consistency", "images"} <= set(rows[0])
    assert len(read_csv(out / "per_step.csv")) == 5 * 5 * 5
    assert (out / "measures_vs_size.png").exists() and (out / "layers.png").exists()
    assert (
        main(
            [
                "translate",
                "--model",
                "vgg_cifar_maxpool",
                "--data",
                f"folder:{folder}",
                "--protocol",
                "shake",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "unknown protocol" in capsys.readouterr().err


def test_layer_analysis_does_not_depend_on_chunking(gen):
    from defstab.models import create_model

    net = create_model("vgg_cifar_maxpool", width=0.125, seed=0)
    img = torch.rand(5, 3, 32, 40, generator=gen)
    a = layer_shift_analysis(net, img, crop=32, max_shift=4)
    b = layer_shift_analysis(net, img, crop=32, max_shift=4, batch_frames=3)
    assert [r["layer"] for r in a] == [r["layer"] for r in b]
    for x, y in zip(a, b, strict=True):
        assert x["invariance"] == pytest.approx(y["invariance"], rel=1e-4, abs=1e-7)
        assert x["equivariance"] == pytest.approx(
            y["equivariance"], rel=1e-4, abs=1e-7, nan_ok=True
        )


@pytest.mark.parametrize(
    "model_name", [f"vgg_cifar_{k}" for k in ("subsample", "maxpool", "avgpool", "strided",
                                              "strided_relu", "blurpool")] + ["resnet18"],
)  # fmt: skip
def test_layer_analysis_runs_on_every_registry_model_and_a_torchvision_cnn(model_name, gen):
    """Deep layers reach 1×1 or 2×2 maps (the margin must not empty them); strides come
    from feature_info for registry models, from the network's arithmetic for torchvision's."""
    import torchvision

    from defstab.models import create_model

    if model_name == "resnet18":
        model, size = torchvision.models.resnet18(num_classes=10), 32  # layer4: 1×1
        layers = ["maxpool", "layer1", "layer2", "layer3", "layer4"]
        strides = {"maxpool": 4, "layer1": 4, "layer2": 8, "layer3": 16, "layer4": 32}
        source = "network"
    else:
        model, size = create_model(model_name, width=0.125, seed=0), 28  # pool4: 1×1
        layers, source = None, "feature_info"
        strides = {"features.conv1_1": 1, "features.pool1": 2, "features.pool4": 16}
    x = torch.rand(3, 3, size, size + 3, generator=gen)
    rows = layer_shift_analysis(model, x, crop=size, max_shift=3, layers=layers)
    got = {r["layer"]: r["stride"] for r in rows}
    assert all(got[k] == v for k, v in strides.items())
    assert {r["stride_source"] for r in rows} == {source}
    assert all(r["invariance"] == r["invariance"] for r in rows)  # no NaN


def test_layer_invariance_against_a_hand_computation():
    """invariance = mean_i d(pool(f(crop_0 x_i)), pool(f(crop_k x_i))) / median_{i<j}
    d(pool(f(crop_0 x_i)), pool(f(crop_0 x_j))), d the cosine distance (scipy)."""
    from collections import OrderedDict

    from scipy.spatial.distance import cosine

    from defstab.translate.layers import layer_shift_analysis

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
    model = torch.nn.Sequential(OrderedDict(conv=conv, relu=torch.nn.ReLU()))
    images, crop, steps = torch.rand(6, 3, 14, 19), 12, 3
    x0, y0 = (19 - crop - steps) // 2, (14 - crop) // 2

    def pooled(x, k):
        frame = x[..., y0 : y0 + crop, x0 + k : x0 + k + crop]
        with torch.no_grad():
            return torch.relu(conv(frame)).mean((-1, -2)).double().numpy()

    def by_hand(x):
        p0 = pooled(x, 0)
        norm = np.median([cosine(p0[i], p0[j]) for i in range(6) for j in range(i + 1, 6)])
        return [np.mean([cosine(p0[i], pooled(x, k)[i]) for i in range(6)]) / norm
                for k in range(1, steps + 1)]  # fmt: skip

    rows = [r for r in layer_shift_analysis(model, images, crop, steps, layers=["relu"])]
    want = by_hand(images)
    assert [r["shift"] for r in rows] == [1, 2, 3] and min(want) > 0.01  # really not invariant
    assert [r["invariance"] for r in rows] == pytest.approx(want, rel=1e-4)
    # images constant along x: every crop is the same picture, so exactly invariant (0),
    # while distinct images still differ (the normalizer is not 0)
    flat = torch.rand(6, 3, 14, 1).expand(6, 3, 14, 19).contiguous()
    rows = [r for r in layer_shift_analysis(model, flat, crop, steps, layers=["relu"])]
    assert [r["invariance"] for r in rows] == pytest.approx([0.0] * 3, abs=1e-6)


def test_inpainted_background_against_scipy():
    """Edge extension (numpy 'edge' padding) then a σ = 6 Gaussian blur truncated at 3σ with
    nearest-edge boundaries (scipy.ndimage), the object pasted back sharp."""
    from scipy.ndimage import gaussian_filter

    from defstab.translate.protocols import inpaint_background

    torch.manual_seed(1)
    obj = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    canvas, top, left = 30, 5, 17
    got = inpaint_background(obj, canvas, top, left).numpy()
    pad = ((0, 0), (0, 0), (top, canvas - top - 8), (left, canvas - left - 8))
    filled = np.pad(obj.numpy(), pad, mode="edge")
    want = gaussian_filter(filled, sigma=(0, 0, 6, 6), mode="nearest", truncate=3.0)
    want[..., top : top + 8, left : left + 8] = obj.numpy()
    assert np.abs(got - want).max() < 1e-9
    # a few pixels far from the object: not a constant fill, and not the object's mean
    corners = got[..., [0, 0, -1, -1], [0, -1, 0, -1]]
    assert np.ptp(corners) > 1e-3
