"""Circular and fractional shifts, APS downsampling, accuracy under the worst shift and
consistency split by correctness, each against an independent oracle: ``torch.roll``, a
literal re-implementation of Michaeli et al.'s zero-insertion ``subpixel_shift``, a
closed form, loops over polyphase components, shifts and images, and hand-made models
with known answers."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from defstab.models import create_model
from defstab.models.downsample import APS_CRITERIA, APSPool, make_downsampler
from defstab.translate import run_protocol
from defstab.translate.measures import consistency_by_correctness
from defstab.translate.robust import crop_grid, shift_robust_accuracy
from defstab.translate.shifts import (
    circular_shift,
    fourier_shift,
    fraction_factors,
    shift_grid,
)


def _rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


# ---- shifts -------------------------------------------------------------------------


def test_circular_shift_is_torch_roll_for_every_shift():
    x = _rand(3, 2, 7, 10)
    shifts = torch.tensor([[0, 0], [1, 0], [0, 1], [-3, 5], [13, -7], [10, 7]])
    frames = circular_shift(x, shifts)
    for j, (dx, dy) in enumerate(shifts.tolist()):
        assert torch.equal(frames[:, j], torch.roll(x, (dy, dx), dims=(2, 3)))


def _recon_mask(n: int, up: int) -> torch.Tensor:
    """Michaeli et al.'s reconstruction mask (``create_recon_rect``), restated."""
    low = int((n * (1 / up)) // 2)
    high = n - low
    rect = torch.ones(n, dtype=torch.float64)
    rect[low + 1 : high] = 0
    if n % 4 == 0:
        rect[low] = rect[high] = 0.5
    return rect[:, None] * rect[None, :]


def _their_subpixel_shift(images, up, shift_x, shift_y):
    """Zero-insert ×up, ideal low-pass, ×up², roll by (−shift_x, −shift_y) on (H, W),
    decimate: the image read at (i + shift_x/up, j + shift_y/up)."""
    b, c, h, w = images.shape
    z = images.double().reshape(b, c, h, 1, w, 1)
    z = F.pad(z, [0, up - 1, 0, 0, 0, up - 1]).reshape(b, c, h * up, w * up)
    z = torch.fft.ifft2(torch.fft.fft2(z) * _recon_mask(h * up, up)).real * up**2
    return torch.roll(z, shifts=(-shift_x, -shift_y), dims=(2, 3))[:, :, ::up, ::up]


@pytest.mark.parametrize("up,shift_x,shift_y", [(2, 1, 1), (2, 3, 6), (3, 1, 2), (4, 3, 1),
                                                (2, 63, 1)])  # fmt: skip
def test_fourier_shift_equals_the_authors_zero_insertion_shift(up, shift_x, shift_y):
    x = _rand(2, 3, 32, 32, seed=up)
    theirs = _their_subpixel_shift(x, up, shift_x, shift_y)
    # theirs reads at i + s/up, s_x on rows: content moved by (−s_y/up, −s_x/up) as (dx, dy)
    ours = fourier_shift(x.double(), torch.tensor([[-shift_y / up, -shift_x / up]]))[:, 0]
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_fourier_shift_of_a_sinusoid_is_the_closed_form_and_whole_pixels_are_rolls():
    n, k, d = 16, 3, 0.3
    xs = torch.arange(n, dtype=torch.float64)
    wave = torch.sin(2 * math.pi * k * xs / n).expand(1, 1, n, n)  # varies along x
    moved = fourier_shift(wave, torch.tensor([[d, 0.0]]))[0, 0, 0]
    expected = torch.sin(2 * math.pi * k * (xs - d) / n).expand(n, n)
    assert torch.allclose(moved, expected, atol=1e-12)
    # the Nyquist row (k = n/2) moves as cos(π d)·(−1)^x: the mean of its two signs
    nyq = torch.cos(math.pi * xs).expand(1, 1, n, n)
    half = fourier_shift(nyq, torch.tensor([[0.5, 0.0]]))[0, 0, 0]
    assert torch.allclose(half, torch.zeros(n, n, dtype=torch.float64), atol=1e-12)
    x = _rand(2, 3, 12, 9)
    whole = torch.tensor([[2.0, -1.0], [5.0, 4.0]])
    assert torch.allclose(fourier_shift(x, whole), circular_shift(x, whole.long()), atol=1e-5)
    # shifts compose, a then b is a + b, where no Nyquist bin is split (odd sides)
    x = _rand(2, 3, 11, 9)
    a = fourier_shift(fourier_shift(x, torch.tensor([[0.25, 0.5]]))[:, 0], [[0.5, -0.25]])
    assert torch.allclose(a, fourier_shift(x, torch.tensor([[0.75, 0.25]])), atol=1e-5)


def test_shift_grids_are_the_authors_sets():
    assert fraction_factors(4) == [3, 4] and fraction_factors(6) == [4, 5, 6]
    integer = shift_grid("integer", 32)
    assert integer.shape == (961, 2) and integer.min() == 1 and integer.max() == 31
    # the fraction grid: every (k/u, l/u), k, l in 1…u−1, u in {3, 4}, read at i + k/u
    theirs = {(-k / u, -m / u) for u in (3, 4) for k in range(1, u) for m in range(1, u)}
    assert {tuple(r) for r in shift_grid("fraction", max_up=4).tolist()} == theirs
    assert len(theirs) == 13
    half = shift_grid("half", 32)
    assert torch.equal(half, -(integer - 0.5))
    assert shift_grid("full", 32).shape == (1922, 2)
    # crop geometry: offsets 1…2R of a (crop + 2R) image, the centred one at R
    crop = crop_grid("integer", 3)
    assert crop.shape == (36, 2) and crop.min() == -3 and crop.max() == 2
    with pytest.raises(ValueError, match="grid must be one of"):
        shift_grid("diagonal")
    with pytest.raises(ValueError, match="max_up ≥ 2"):
        shift_grid("fraction", max_up=1)


# ---- APS -----------------------------------------------------------------------------


def _aps_loop(x: torch.Tensor, criterion: str) -> tuple[torch.Tensor, list[int]]:
    """Per image: pad odd sides by wrapping, score each component in APS's order, keep
    the first best one."""
    outs, chosen = [], []
    for img in x:
        if img.shape[-2] % 2:
            img = torch.cat([img, img[:, :1]], dim=1)
        if img.shape[-1] % 2:
            img = torch.cat([img, img[:, :, :1]], dim=2)
        # APS's order: (even, even), (odd, even), (even, odd), (odd, odd) as (row, col)
        comps = [img[:, r::2, c::2] for r, c in ((0, 0), (1, 0), (0, 1), (1, 1))]
        scores = [float(APS_CRITERIA[criterion](c.reshape(1, 1, -1))) for c in comps]
        best = scores.index(max(scores))
        chosen.append(best)
        outs.append(comps[best])
    return torch.stack(outs), chosen


@pytest.mark.parametrize("criterion", sorted(APS_CRITERIA))
@pytest.mark.parametrize("size", [(8, 8), (7, 9)])
def test_aps_selection_against_a_loop_over_polyphase_components(criterion, size):
    x = _rand(6, 3, *size, seed=3) - 0.5
    pool = APSPool(3, criterion=criterion)
    expected, chosen = _aps_loop(x, criterion)
    assert torch.equal(pool(x), expected)
    assert pool.last_index.tolist() == chosen
    assert len(set(chosen)) > 1  # the images really choose differently


def test_aps_ties_go_to_the_first_component_and_blur_pads_circularly():
    pool = APSPool(2)
    flat = torch.ones(3, 2, 6, 6)
    pool(flat)
    assert pool.last_index.tolist() == [0, 0, 0]
    blurred = make_downsampler("aps3", 2)
    x = _rand(2, 2, 8, 8)
    for dy, dx in [(1, 0), (0, 1), (3, 5)]:  # equivariant: a roll moves each output by a roll
        a, b = blurred(x), blurred(torch.roll(x, (dy, dx), (2, 3)))
        for i in range(x.shape[0]):
            assert any(torch.allclose(b[i], torch.roll(a[i], s, (1, 2)), atol=1e-6)
                       for s in itertools.product(range(4), repeat=2))  # fmt: skip


def _all_circular_logits(model, x):
    """(S, N, K) logits of every circular shift of ``x`` (N, C, H, W)."""
    h, w = x.shape[-2:]
    shifts = torch.cartesian_prod(torch.arange(w), torch.arange(h))  # (dx, dy)
    frames = circular_shift(x, shifts)  # (N, S, C, H, W)
    with torch.no_grad():
        out = model(frames.flatten(0, 1)).view(x.shape[0], len(shifts), -1)
    return out.transpose(0, 1)


def test_aps_with_circular_padding_is_exactly_invariant_to_every_circular_shift():
    torch.manual_seed(0)
    model = create_model("vgg_cifar_aps", width=0.125, padding="circular", seed=1).eval()
    x = _rand(3, 3, 32, 32, seed=4)
    logits = _all_circular_logits(model, x)  # 1,024 shifts
    assert torch.allclose(logits, logits[:1].expand_as(logits), atol=1e-5, rtol=1e-5)
    assert (logits.argmax(-1) == logits[0].argmax(-1)).all()
    # after a few training steps too (batch statistics, then eval)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    data, labels = _rand(32, 3, 32, 32, seed=5), torch.arange(32) % 10
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(model(data), labels).backward()
        opt.step()
    model.eval()
    trained = _all_circular_logits(model, x)
    assert not torch.allclose(trained[0], logits[0])  # it did learn something
    assert torch.allclose(trained, trained[:1].expand_as(trained), atol=1e-5, rtol=1e-5)


def test_the_same_aps_network_is_not_invariant_to_crops_or_with_zero_padding():
    circular = create_model("vgg_cifar_aps", width=0.125, padding="circular", seed=1).eval()
    x = _rand(4, 3, 40, 40, seed=6)
    with torch.no_grad():
        crops = torch.stack([circular(x[..., 4 + d : 36 + d, 4:36]) for d in range(-3, 4)])
    assert (crops - crops[3]).abs().amax() > 1e-3  # new content enters at the border
    zeros = create_model("vgg_cifar_aps", width=0.125, seed=1).eval()
    logits = _all_circular_logits(zeros, x[..., :32, :32])
    assert (logits - logits[0]).abs().amax() > 1e-3


def test_circular_padding_on_any_model_and_refused_names():
    from defstab.models.loading import build_model

    tv = build_model("torchvision:resnet18", num_classes=4, padding="circular")
    assert tv.conv1.padding_mode == "circular" and tv.layer1[0].conv1.padding_mode == "circular"
    with pytest.raises(ValueError, match="padding must be one of"):
        build_model("vgg_cifar_aps", padding="reflect")
    with pytest.raises(ValueError, match="filter size must be an integer"):
        make_downsampler("aps9", 4)


# ---- worst-shift accuracy ------------------------------------------------------------


class BrightestColumn(nn.Module):
    """Class 1 if the brightest pixel lies in the left half of the image, else 0."""

    def forward(self, x):
        col = x.sum(1).amax(1).argmax(-1)  # (N,) column of the brightest pixel
        return F.one_hot((col < x.shape[-1] // 2).long(), 2).float()


def test_worst_shift_accuracy_of_a_hand_made_classifier_with_a_known_answer():
    # one bright pixel at column c of a 16-px image; integer grid R: content moved by
    # dx in 1…R−1, so the image stays in class 1 (left half) iff c + dx < 8 for all dx
    n, w, r = 16, 16, 4
    x = torch.zeros(n, 1, w, w)
    cols = torch.arange(n)
    x[torch.arange(n), 0, 5, cols] = 1.0
    labels = (cols < w // 2).long()
    found = shift_robust_accuracy(BrightestColumn(), x, labels, "integer", radius=r)
    expected = [bool(c + r - 1 < 8) if c < 8 else bool(c + 1 >= 8 and (c + r - 1) < w)
                for c in cols.tolist()]  # fmt: skip
    assert found["robust"].tolist() == expected
    assert found["accuracy"] == 1.0
    assert found["robust_accuracy"] == pytest.approx(sum(expected) / n)
    # the first failing shift in the grid's order (dx runs fastest, from dy = 1): the
    # smallest dx that carries the pixel across a half's edge
    failed = ~found["robust"]
    first = found["first_failure"][failed]
    c = cols[failed]
    assert first[:, 0].tolist() == torch.where(c < 8, 8 - c, 16 - c).tolist()
    assert (first[:, 1] == 1).all()
    assert found["first_failure"][~failed].isnan().all()
    # wrong unshifted but right under every shift (the pixel at 7, said to be on the right)
    # is not robust: the score ANDs the clean image in
    labels[7] = 0
    relabelled = shift_robust_accuracy(BrightestColumn(), x, labels, "integer", radius=r)
    assert not relabelled["robust"][7] and relabelled["accuracy"] == 15 / 16


class MeanColour(nn.Module):
    """Logits from the mean colour: blind to any circular shift."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 5)

    def forward(self, x):
        return self.linear(x.mean((2, 3)))


def _loop_robust(model, x, labels, shifts):
    """Per image, per shift: roll or band-limited shift, classify, AND; and the first
    shift that misclassifies an image right until then (None if none)."""
    robust, first = [], []
    with torch.no_grad():
        for img, y in zip(x, labels, strict=True):
            ok = bool(model(img[None]).argmax(-1) == y)
            first.append(None)
            for dx, dy in shifts.tolist():
                if float(dx).is_integer() and float(dy).is_integer():
                    moved = torch.roll(img, (int(dy), int(dx)), (1, 2))
                else:
                    moved = _their_subpixel_shift(img[None], 2, int(-2 * dy), int(-2 * dx))[0]
                    moved = moved.float()
                right = bool(model(moved[None]).argmax(-1) == y)
                if ok and not right:
                    first[-1] = [dx, dy]
                ok &= right
            robust.append(ok)
    return robust, first


@pytest.mark.parametrize("grid", ["integer", "half"])
def test_worst_shift_accuracy_equals_a_loop_over_images_and_shifts(grid, monkeypatch):
    import defstab.translate.robust as robust

    monkeypatch.setattr(robust, "FRAME_BUDGET", 5 * 3 * 16 * 16 * 7)  # 7 shifts a chunk
    model = create_model("vgg_cifar_maxpool", width=0.125, seed=2).eval()
    x = _rand(12, 3, 16, 16, seed=7)
    with torch.no_grad():
        labels = model(x).argmax(-1)
    labels[::3] = (labels[::3] + 1) % 10  # some wrong from the start
    found = shift_robust_accuracy(model, x, labels, grid, radius=5, chunk_images=5)
    robust, first = _loop_robust(model, x, labels, shift_grid(grid, 5))
    assert found["robust"].tolist() == robust and not all(robust)
    got = [None if math.isnan(a) else [a, b] for a, b in found["first_failure"].tolist()]
    assert got == first
    assert found["accuracy"] == pytest.approx(8 / 12)
    invariant = MeanColour()
    with torch.no_grad():
        own = invariant(x).argmax(-1)
    done = shift_robust_accuracy(invariant, x, own, "integer", radius=16)
    assert done["robust_accuracy"] == 1.0  # blind to rolls: robust wherever correct


def test_worst_shift_accuracy_in_crop_geometry_and_bad_radii():
    model = create_model("vgg_cifar_maxpool", width=0.125, seed=2).eval()
    x = _rand(6, 3, 24, 24, seed=8)
    ref = x[..., 4:20, 4:20]
    with torch.no_grad():
        labels = model(ref).argmax(-1)
    found = shift_robust_accuracy(model, x, labels, "integer", geometry="crop", radius=4)
    loop = []
    with torch.no_grad():
        for img, y in zip(x, labels, strict=True):
            ok = True
            for ox, oy in itertools.product(range(1, 9), repeat=2):  # offsets 1…2R
                ok &= bool(model(img[None, :, oy : oy + 16, ox : ox + 16]).argmax(-1) == y)
            loop.append(ok)
    assert found["robust"].tolist() == loop and found["shifts"] == 64
    with pytest.raises(ValueError, match="need images of at least"):
        shift_robust_accuracy(model, x, labels, geometry="crop", radius=5, crop=16)
    with pytest.raises(ValueError, match="wrap 24×24 px images more than once"):
        shift_robust_accuracy(model, x, labels, radius=30)


# ---- consistency by correctness ------------------------------------------------------


def test_consistency_split_by_correctness_against_a_planted_answer():
    # images 0-3 correct at frame 0 and never change; 4-7 wrong at frame 0 (class 0,
    # label 1) and alternate 0, 1, 0, 1 — right at the last frame
    k, s = 4, 4
    top = torch.zeros(8, s, dtype=torch.long)
    top[4:, 1::2] = 1
    labels = torch.tensor([0] * 4 + [1] * 4)
    probs = F.one_hot(top, k).float()
    out = consistency_by_correctness(probs, labels)
    # a wrong image: frames 0, 2 agree and 1, 3 agree: 4 of the 12 ordered pairs
    assert out["consistency_correct"] == 1.0
    assert out["consistency_incorrect"] == pytest.approx(4 / 12)
    assert out["first_frame_accuracy"] == 0.5
    assert (out["images_correct"], out["images_incorrect"]) == (4, 4)
    assert math.isnan(consistency_by_correctness(probs[:4], labels[:4])["consistency_incorrect"])


def test_protocols_run_and_an_aps_network_is_fully_consistent_under_circular_ones():
    model = create_model("vgg_cifar_aps", width=0.125, padding="circular", seed=0).eval()
    x, y = _rand(10, 3, 32, 32, seed=9), torch.arange(10)
    circular = run_protocol(model, x, y, "circular", 5, canvas=32)
    assert circular.summary()["consistency"] == 1.0 and circular.summary()["mac"] < 1e-6
    assert circular.geometry.tolist() == [[k, 0] for k in range(6)]
    pairs = run_protocol(model, x, y, "circular-pairs", 1, canvas=32, window=6,
                         generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert pairs.summary()["consistency"] == 1.0
    assert pairs.geometry.min() >= -3 and pairs.geometry.max() <= 2
    frac = run_protocol(model, x, y, "fractional", 4, canvas=32, fraction=4)
    assert frac.geometry[:, 0].tolist() == [0, 0.25, 0.5, 0.75, 1.0]
