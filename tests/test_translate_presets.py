"""Translation presets against loop re-implementations of the authors' own evaluation code
(Azulay & Weiss's JaggedNess loop; Zhang's validate_shift), and through the CLI."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from defstab.data.normalize import Normalize
from defstab.translate import make_frames, run_protocol
from defstab.translate.presets import AZULAY_OBJECT_SIZES, PRESETS, get_preset
from defstab.translate.protocols import random_offset_pairs, resize

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def position_sensitive_net() -> nn.Module:
    """Coarse stride-8 conv and a linear head on its map: predictions move with shifts."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 8, stride=8), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 28 * 28, 10)
    ).eval()


def azulay_loop(model, normalized_pairs):
    """Their JaggedNess body: for each pair (inputs1, inputs2), top-1 change, and
    |p1 − p2| of the class that was top-1 in the first; averaged over all pairs."""
    jagged, mac, count = 0.0, 0.0, 0
    with torch.no_grad():
        for a, b in normalized_pairs:
            p1, p2 = model(a).softmax(1), model(b).softmax(1)
            t1 = int(p1.argmax(1))
            jagged += float(t1 != int(p2.argmax(1)))
            mac += abs(float(p1[0, t1]) - float(p2[0, t1]))
            count += 1
    return jagged / count, mac / count


@pytest.fixture(scope="module")
def images_234():
    return torch.rand(3, 3, 234, 234, generator=torch.Generator().manual_seed(1))


def test_azulay_crop_protocol_matches_their_loop(images_234):
    model, norm = position_sensitive_net(), Normalize(MEAN, STD)
    preset = get_preset("azulay").resolved(224)
    res = run_protocol(
        model, images_234, None, "crop", preset.steps, norm, **preset.geometry("crop")
    )
    # their loop: centre = int((234 − 224 − 1)/2); c in centre−4 … centre+3, (c,c) vs (c+1,c+1)
    centre = int((234 - 224 - 1) / 2)
    pairs = [
        (
            norm(x[None, :, c : c + 224, c : c + 224]),
            norm(x[None, :, c + 1 : c + 225, c + 1 : c + 225]),
        )
        for x in images_234
        for c in range(centre - 4, centre + 4)
    ]
    jag, mac = azulay_loop(model, pairs)
    summary = res.summary()
    assert summary["p_top1_change"] == pytest.approx(jag, abs=1e-6)
    assert summary["mac"] == pytest.approx(mac, abs=1e-6)
    assert res.geometry.tolist() == [[k, k] for k in range(9)]  # diagonal offsets 0…8
    assert 0 < jag < 1  # the net is position sensitive: the comparison is not trivial


@pytest.mark.parametrize("size", AZULAY_OBJECT_SIZES)
def test_azulay_black_protocol_is_zeros_after_normalisation(images_234, size):
    """Their canvas is zeros *after* normalisation; ours pastes the mean colour before it.
    Same frames, same measures."""
    model, norm = position_sensitive_net(), Normalize(MEAN, STD)
    preset = get_preset("azulay").resolved(224)
    res = run_protocol(
        model, images_234, None, "embed", preset.steps, norm, **preset.geometry("embed", size)
    )
    obj = resize(images_234, size)
    centre = int((224 - size - 1) / 2)

    def pasted(x, c):
        frame = torch.zeros(1, 3, 224, 224)
        frame[:, :, c : c + size, c : c + size] = norm(x[None])
        return frame

    pairs = [(pasted(x, c), pasted(x, c + 1)) for x in obj for c in range(centre - 4, centre + 4)]
    jag, mac = azulay_loop(model, pairs)
    assert res.summary()["p_top1_change"] == pytest.approx(jag, abs=1e-6)
    assert res.summary()["mac"] == pytest.approx(mac, abs=1e-6)
    assert res.geometry[0].tolist() == [centre - 4, centre - 4]
    # the black background is a different protocol: true black pixels
    frames, _ = make_frames(
        "embed", images_234, 8, **(preset.geometry("embed", size) | {"background": "black"})
    )
    assert frames[0, 0, :, 0, 0].tolist() == [0.0, 0.0, 0.0]
    assert AZULAY_OBJECT_SIZES == (172, 140, 117)


def test_zhang_random_pairs_by_a_loop():
    """Two crops at independent offsets in 0…31 on each axis; consistency = agreement."""
    x = torch.rand(5, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    frames, offsets = random_offset_pairs(x, 40, 16, torch.Generator().manual_seed(3))
    assert frames.shape == (5, 2, 3, 40, 40) and offsets.shape == (5, 2, 2)
    for i in range(5):
        for k in range(2):
            ox, oy = offsets[i, k].tolist()
            assert torch.equal(frames[i, k], x[i, :, oy : oy + 40, ox : ox + 40])
    # the same seed, the same offsets; every offset of the window is drawn, none outside
    _, again = random_offset_pairs(x, 40, 16, torch.Generator().manual_seed(3))
    assert torch.equal(offsets, again)
    _, many = random_offset_pairs(
        torch.rand(4000, 1, 48, 48), 17, 32, torch.Generator().manual_seed(0)
    )
    assert many.min() == 0 and many.max() == 31 and len(many.unique()) == 32
    # Zhang's code draws one pair per batch
    _, batched = random_offset_pairs(x, 40, 16, torch.Generator().manual_seed(3), per_batch=2)
    assert torch.equal(batched[0], batched[1]) and torch.equal(batched[2], batched[3])
    assert not torch.equal(batched[1], batched[2]) or not torch.equal(batched[3], batched[4])


def test_zhang_consistency_against_validate_shift_loop():
    model, norm = position_sensitive_net(), Normalize(MEAN, STD)
    x = torch.rand(6, 3, 256, 256, generator=torch.Generator().manual_seed(4))
    preset = get_preset("zhang").resolved(224)
    geo = preset.geometry("random-pairs")
    res = run_protocol(
        model,
        x,
        None,
        "random-pairs",
        preset.steps,
        norm,
        generator=torch.Generator().manual_seed(5),
        **geo,
    )
    offsets = res.geometry  # (N, 2, 2) as (x, y)
    agree = []
    with torch.no_grad():
        for i in range(6):
            (x0, y0), (x1, y1) = offsets[i].tolist()
            out0 = model(norm(x[i : i + 1, :, y0 : y0 + 224, x0 : x0 + 224]))
            out1 = model(norm(x[i : i + 1, :, y1 : y1 + 224, x1 : x1 + 224]))
            agree.append(float(out0.argmax(1) == out1.argmax(1)))
    summary = res.summary()
    assert summary["consistency"] == pytest.approx(np.mean(agree), abs=1e-6)
    assert "p_top1_change" not in summary and "mac" not in summary  # not one-pixel steps
    assert offsets.max() <= 31 and offsets.min() >= 0


def test_presets_record_their_whole_geometry():
    az = get_preset("azulay").resolved(224)
    rec = az.record()
    assert rec["source_size"] == 234 and rec["crop"] == 224 and rec["steps"] == 8
    assert rec["direction"] == "diagonal" and rec["background"] == "mean"
    assert az.geometry("crop")["start"] == (0, 0)  # int((234 − 224 − 1)/2) − 4
    assert az.geometry("embed", 140)["start"] == (37, 37)  # int((224 − 140 − 1)/2) − 4
    default = get_preset("defstab").resolved(224)
    assert (default.steps, default.crop, default.object_sizes) == (28, 196, (112,))
    assert default.geometry("crop")["start"] is None  # centred
    assert set(PRESETS) == {"defstab", "azulay", "zhang", "aps", "aps-cifar", "michaeli"}
    with pytest.raises(ValueError, match="choose from"):
        get_preset("petrini")


def _run(main, folder, out, *extra):
    return main(
        [
            "translate",
            "--model",
            "vgg_imagenet_subsample",
            "--width",
            "0.0625",
            "--data",
            f"folder:{folder}",
            "--images",
            "2",
            "--out",
            str(out),
            "--quiet",
            *extra,
        ]
    )


def test_translate_presets_through_the_cli(tmp_path, capsys):
    from defstab.cli.main import main
    from defstab.io.tables import read_csv
    from fixtures_formats import write_image_folder

    folder = write_image_folder(tmp_path / "imgs", per_class=2, size=(64, 48))
    out = tmp_path / "az"
    assert _run(main, folder, out, "--preset", "azulay") == 0
    rows = read_csv(out / "summary.csv")
    assert [(r["protocol"], r["object_size"]) for r in rows] == [
        ("crop", ""),
        ("embed", "172"),
        ("embed", "140"),
        ("embed", "117"),
    ]
    assert all(r["preset"] == "azulay" for r in rows) and rows[1]["background"] == "mean"
    config = json.loads((out / "config.json").read_text())
    assert config["protocol"]["source_size"] == 234 and config["protocol"]["overridden"] == []
    section = json.loads((out / "section.json").read_text())
    assert "0.062" in " ".join(section["text"])  # the paper's values, beside their preset
    per_step = read_csv(out / "per_step.csv")
    assert [r["geometry"] for r in per_step if r["protocol"] == "crop"][:3] == ["0x0", "1x1", "2x2"]

    # a changed geometry: warned, and no published value quoted
    out2 = tmp_path / "az2"
    assert _run(main, folder, out2, "--preset", "azulay", "--steps", "4", "--protocol", "crop") == 0
    assert "not comparable" in capsys.readouterr().err
    section = json.loads((out2 / "section.json").read_text())
    assert "0.062" not in " ".join(section["text"]) and "No published values" in " ".join(
        section["text"]
    )

    out3 = tmp_path / "zh"
    assert _run(main, folder, out3, "--preset", "zhang") == 0
    rows = read_csv(out3 / "summary.csv")
    assert [r["protocol"] for r in rows] == ["random-pairs"] and "p_top1_change" not in rows[0]
    assert json.loads((out3 / "config.json").read_text())["protocol"]["window"] == 32

    # the default preset quotes nothing either
    out4 = tmp_path / "d"
    assert _run(main, folder, out4, "--steps", "2", "--protocol", "crop") == 0
    assert "--preset azulay" in " ".join(json.loads((out4 / "section.json").read_text())["text"])
    assert _run(main, folder, tmp_path / "bad", "--preset", "zhang", "--crop-size", "250") == 2
    assert "too small" in capsys.readouterr().err
