"""ImageNet-P's measures and sequences: FP and T5D against literal ports of ``test.py``'s
loops (scipy's ordinal ranks), the frames against torchvision's affine one frame at a
time, a hand-made classifier with a known flip probability, and ``defstab perturb``
through the CLI with a baseline and with a user's mistakes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from scipy.stats import rankdata
from torch import nn
from torchvision.transforms import InterpolationMode

from defstab.cli.main import main
from defstab.io.tables import read_csv
from defstab.translate.flips import sequence_measures
from defstab.translate.sequences import get_sequence_preset, make_sequence, tilt_matrix


def _their_flip_prob(predictions, noise, difficulty):
    """``test.py``'s flip_prob, restated loop for loop."""
    result, step = 0.0, 1 if noise else difficulty
    for vid in predictions:
        per_vid = []
        for i in range(step):
            prev = vid[i]
            for pred in vid[i::step][1:]:
                per_vid.append(int(prev != pred))
                if not noise:
                    prev = pred
        result += np.mean(per_vid) / len(predictions)
    return result


def _their_ranking_dist(ranks, noise, difficulty):
    """``test.py``'s ranking_dist in top-5 mode, with its cumulative table."""
    k = ranks.shape[-1]
    cum = np.cumsum(np.asarray([0] + [1] * 5 + [0] * (k - 5)))
    result, step = 0.0, 1 if noise else difficulty
    for vid in ranks:
        per_vid = []
        for i in range(step):
            perm1 = vid[i]
            inv = np.argsort(perm1)
            for perm2 in vid[i::step][1:]:
                sigma = perm2[inv]
                per_vid.append(np.sum(np.abs(cum[:5] - cum[sigma - 1][:5])))
                if not noise:
                    perm1, inv = perm2, np.argsort(perm2)
        result += np.mean(per_vid) / len(ranks)
    return result


@pytest.mark.parametrize("noise,difficulty", [(True, 1), (False, 1), (False, 2), (False, 3)])
def test_fp_and_t5d_equal_the_authors_loops(noise, difficulty):
    g = torch.Generator().manual_seed(difficulty + 10 * noise)
    # few classes and correlated frames, so that flips and rank changes both happen
    base = torch.randn(7, 1, 12, generator=g)
    logits = base + 0.6 * torch.randn(7, 11, 12, generator=g)
    got = sequence_measures(logits, difficulty if not noise else 1, noise)
    preds = logits.argmax(-1).numpy()
    ranks = np.stack([[rankdata(-f, method="ordinal") for f in vid] for vid in logits.numpy()])
    assert float(got["fp"].mean()) == pytest.approx(_their_flip_prob(preds, noise, difficulty))
    assert float(got["t5d"].mean()) == pytest.approx(_their_ranking_dist(ranks, noise, difficulty))
    assert 0 < float(got["fp"].mean()) < 1


@pytest.mark.parametrize("noise,difficulty", [(True, 1), (False, 1), (False, 2)])
def test_t5d_ranks_tied_scores_as_the_authors_ordinal_ranking(noise, difficulty):
    """Scores in {0, 1, 2} over 12 classes: ties everywhere, ranked as rankdata's ordinal
    method ranks them (the lower class index first)."""
    g = torch.Generator().manual_seed(7 + difficulty)
    logits = torch.randint(0, 3, (6, 9, 12), generator=g).float()
    got = sequence_measures(logits, difficulty if not noise else 1, noise)
    ranks = np.stack([[rankdata(-f, method="ordinal") for f in vid] for vid in logits.numpy()])
    assert float(got["t5d"].mean()) == pytest.approx(_their_ranking_dist(ranks, noise, difficulty))
    flat = torch.zeros(2, 5, 10)  # every score tied in every frame: the ranking never moves
    assert sequence_measures(flat, 1, False)["t5d"].tolist() == [0.0, 0.0]


class CentreOfMass(nn.Module):
    """Class 1 when an image's brightness lies right of its centre, else 0."""

    def forward(self, x):
        w = x.shape[-1]
        mass = x.sum((1, 2))  # (N, W)
        x_bar = (mass * torch.arange(w)).sum(-1) / mass.sum(-1)
        right = x_bar > (w - 1) / 2
        return torch.stack([(~right).float(), right.float()], dim=1)


def test_a_classifier_with_a_known_flip_probability():
    # a bright 2-px bar at columns 15, 16 of a 32-px image (centred): cifar-p's translate
    # moves it by −7…+8 px; the class changes once, between shifts 0 and +1
    x = torch.zeros(3, 1, 32, 32)
    x[..., 15:17] = 1.0
    x[..., 10, 15:17] = 0.5  # (still centred)
    frames, shifts = make_sequence(x, "translate", get_sequence_preset("cifar-p"))
    assert shifts.tolist() == list(range(-7, 9)) and frames.shape == (3, 16, 1, 32, 32)
    with torch.no_grad():
        logits = CentreOfMass()(frames.flatten(0, 1)).view(3, 16, 2)
    got = sequence_measures(logits, 1, False)
    assert got["fp"].tolist() == pytest.approx([1 / 15] * 3)
    # the flip pair: ranks swap, |0 − 1| + |1 − 0| = 2 (two classes: k runs to 2)
    assert got["t5d"].tolist() == pytest.approx([2 / 15] * 3)
    got2 = sequence_measures(logits, 2, False)  # pairs (j, j + 2): two of the 14 straddle
    assert got2["fp"].tolist() == pytest.approx([2 / 14] * 3)


def test_frames_match_torchvision_affine_frame_by_frame():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 40, 40, generator=g)
    preset = get_sequence_preset("imagenet-p")
    small = type(preset)("t", 40, 32, translate=(-5, 11), rotate=(-3.0, 1.5, 5),
                         scale=(0.8, 0.1, 5), tilt=(-4.0, 2.0, 5))  # fmt: skip
    frames, shifts = make_sequence(x, "translate", small)
    for j, s in enumerate(shifts.tolist()):
        expected = TF.affine(x, angle=0.0, translate=[s, 0], scale=1.0, shear=[0.0],
                             interpolation=InterpolationMode.NEAREST, fill=0.0)  # fmt: skip
        assert torch.equal(frames[:, j], expected[..., 4:36, 4:36])
    # today's torchvision turns about (w/2, h/2); the 2018 one about (w/2 + ½, h/2 + ½)
    for centre, about in (("modern", None), ("authors", [20.5, 20.5])):
        for kind in ("rotate", "scale"):
            frames, values = make_sequence(x, kind, small, centre=centre)
            for j, v in enumerate(values.tolist()):
                kw = {"angle": v, "scale": 1.0} if kind == "rotate" else {"angle": 0.0, "scale": v}
                expected = TF.affine(x, translate=[0, 0], shear=[0.0], fill=0.0, center=about,
                                     interpolation=InterpolationMode.BILINEAR, **kw)  # fmt: skip
                assert torch.allclose(frames[:, j], expected[..., 4:36, 4:36], atol=1e-4)
    # tilt at 0°: the authors' matrix zooms out by f/(1 + f) about cv2's centre pixel w/2;
    # on a horizontal ramp (bilinear is exact there) that is a closed form
    ramp = (torch.arange(40.0) / 40).expand(1, 1, 40, 40).contiguous()
    tilt, angles = make_sequence(ramp, "tilt", small)
    middle = angles.tolist().index(0.0)
    s = (40 * 2**0.5) / (1 + 40 * 2**0.5)
    cols = torch.arange(4, 36.0)
    assert torch.allclose(tilt[0, middle, 0, 16], (20 + (cols - 20) / s) / 40, atol=1e-6)
    assert not torch.allclose(tilt[:, 0], tilt[:, middle], atol=1e-2)


def test_tilt_homography_fixes_the_centre_and_zooms_by_f_over_f_plus_1_at_zero():
    f = (64**2 + 48**2) ** 0.5
    zero = tilt_matrix(0.0, 64, 48)
    expected = torch.tensor([[f, 0, 32], [0, f, 24], [0, 0, 1 + f]], dtype=torch.float64)
    assert torch.allclose(zero, expected, atol=1e-9)
    # their lines, in numpy, for other angles
    for deg in (-15.0, 7.0):
        phi = theta = np.deg2rad(deg)
        w, h = 64, 48
        f = np.sqrt(w**2 + h**2)
        p1 = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1], [0, 0, 1]])
        rx = np.array([[1, 0, 0, 0], [0, np.cos(theta), -np.sin(theta), 0],
                       [0, np.sin(theta), np.cos(theta), 0], [0, 0, 0, 1]])  # fmt: skip
        ry = np.array([[np.cos(phi), 0, -np.sin(phi), 0], [0, 1, 0, 0],
                       [np.sin(phi), 0, np.cos(phi), 0], [0, 0, 0, 1]])  # fmt: skip
        t = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, f], [0, 0, 0, 1]])
        p2 = np.array([[f, 0, w / 2, 0], [0, f, h / 2, 0], [0, 0, 1, 0]])
        assert np.allclose(tilt_matrix(deg, w, h).numpy(), p2 @ t @ rx @ ry @ p1)


def test_noise_sequences_start_clean_and_draw_their_levels():
    x = torch.full((4, 3, 32, 32), 0.5)
    preset = get_sequence_preset("imagenet-p")
    cifar_p = get_sequence_preset("cifar-p")
    frames, levels = make_sequence(
        x, "gaussian_noise", cifar_p, 3, torch.Generator().manual_seed(0)
    )
    assert frames.shape[1] == 31 and torch.equal(frames[:, 0], x)
    assert levels[1] == 0.06
    assert (frames[:, 1:] - 0.5).std().item() == pytest.approx(0.06, rel=0.05)
    big = torch.full((2, 3, 256, 256), 0.5)
    shot, lam = make_sequence(big, "shot_noise", preset, 2, torch.Generator().manual_seed(1))
    assert shot.shape[-1] == 224 and lam[1] == 120
    # Poisson(λx)/λ: mean x, variance x/λ
    assert (shot[:, 1:].mean() - 0.5).abs() < 2e-3
    assert shot[:, 1:].var().item() == pytest.approx(0.5 / 120, rel=0.05)


def test_bad_sequence_requests_are_one_sentence():
    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(ValueError, match="unknown perturbation"):
        make_sequence(x, "zoom", get_sequence_preset("cifar-p"))
    with pytest.raises(ValueError, match="short side is 256 px; these have 32"):
        make_sequence(x, "rotate", get_sequence_preset("imagenet-p"))
    with pytest.raises(ValueError, match="difficulty must be 1, 2 or 3"):
        make_sequence(x, "rotate", get_sequence_preset("cifar-p"), difficulty=4)


# ---- CLI ------------------------------------------------------------------------------


def test_perturb_with_a_baseline_then_report(tmp_path, tiny_cifar, capsys):
    run = tmp_path / "results" / "train"
    assert main(["train", "--model", "vgg_cifar_maxpool", "--width", "0.125", "--data", tiny_cifar,
                 "--epochs", "1", "--batch-size", "20", "--quiet",
                 "--out", str(run)]) == 0  # fmt: skip
    out = tmp_path / "results" / "perturb"
    common = ["perturb", "--run", str(run), "--data", tiny_cifar, "--images", "5",
              "--preset", "cifar-p", "--perturbations", "translate,rotate,gaussian_noise",
              "--quiet", "--out", str(out)]  # fmt: skip
    # a user names the baseline twice: one sentence, nothing written
    assert main([*common, "--baseline-model", "vgg_cifar_blurpool", "--baseline-run",
                 str(run)]) == 2  # fmt: skip
    assert "--baseline-model or --baseline-run, not both" in capsys.readouterr().err
    assert not out.exists() or not (out / "summary.csv").exists()
    # the trained network against an untrained blur-pool twin of its width as the baseline
    assert main([*common, "--baseline-model", "vgg_cifar_blurpool",
                 "--baseline-width", "0.125"]) == 0  # fmt: skip
    assert json.loads((out / "config.json").read_text())["baseline"]["model_kwargs"][
        "width"] == 0.125  # fmt: skip
    rows = {r["perturbation"]: r for r in read_csv(out / "summary.csv")}
    assert list(rows) == ["translate", "rotate", "gaussian_noise", "mean"]
    assert rows["translate"]["frames"] == "16" and rows["gaussian_noise"]["noise"] == "True"
    per_video = read_csv(out / "per_video.csv")
    assert len(per_video) == 15
    for pert in ("translate", "rotate", "gaussian_noise"):
        mine = [float(r["fp"]) for r in per_video if r["perturbation"] == pert]
        assert sum(mine) / 5 == pytest.approx(float(rows[pert]["fp"]))
        base = [float(r["baseline_fp"]) for r in per_video if r["perturbation"] == pert]
        if sum(base) > 0:
            assert float(rows[pert]["fr"]) == pytest.approx(sum(mine) / sum(base))
    rates = [float(rows[p]["fr"]) for p in ("translate", "rotate", "gaussian_noise")
             if rows[p]["fr"] not in ("", "nan")]  # fmt: skip
    if rates:
        assert float(rows["mean"]["fr"]) == pytest.approx(sum(rates) / len(rates))
    assert (out / "flips.png").stat().st_size > 5000
    assert main(["report", str(tmp_path / "results"), "-o", str(tmp_path / "r.html")]) == 0
    assert "Perturbation sequences" in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--perturbations", "zoom"], "unknown perturbation zoom"),
        (["--difficulty", "4"], "--difficulty must be at least 1 and at most 3"),
        (
            ["--baseline-model", "torchvision:alexnet", "--preset", "cifar-p"],
            "the baseline torchvision:alexnet cannot take 3×32×32 frames",
        ),
        (
            ["--baseline-checkpoint", "w.safetensors"],
            "has no effect here: it applies with --baseline-model",
        ),
        (["--baseline-width", "0.5"], "has no effect here: it applies with --baseline-model"),
    ],
)
def test_perturb_mistakes(tmp_path, tiny_cifar, capsys, extra, message):
    argv = ["perturb", "--model", "vgg_cifar_maxpool", "--width", "0.125", "--data", tiny_cifar,
            "--images", "2", "--quiet", "--out", str(tmp_path / "o"), *extra]  # fmt: skip
    try:
        status = main(argv)
    except SystemExit as e:
        status = e.code
    err = capsys.readouterr().err
    assert status == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "o" / "summary.csv").exists()
