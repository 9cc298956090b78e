"""The stride arithmetic: each representation point's cumulative stride and s² copies,
against hand computations, from the CLI and in measure's outputs."""

import pytest

from defstab.cli.main import main
from defstab.models import create_model
from defstab.models.architectures import registered_names
from defstab.models.strides import model_strides, registry_strides

# by hand: two 3×3 convs per block at the block's stride, then a pooling that halves
VGG_CIFAR = [("input", 1)] + [
    (f"features.{kind}", s)
    for b, s in enumerate((1, 2, 4, 8), start=1)
    for kind in (f"conv{b}_1", f"conv{b}_2", f"pool{b}")
]
VGG_CIFAR = [(n, 2 * s if n.split(".")[-1].startswith("pool") else s) for n, s in VGG_CIFAR]


def test_vgg_cifar_strides_by_hand():
    rows = registry_strides("vgg_cifar_maxpool", width=0.25)
    assert [(r["layer"], r["stride"]) for r in rows] == VGG_CIFAR
    assert [r["shifted_copies"] for r in rows] == [s * s for _, s in VGG_CIFAR]
    assert rows[-1]["stride"] == 16 and rows[-1]["shifted_copies"] == 256
    assert [r["size"] for r in rows] == [32 // s for _, s in VGG_CIFAR]


@pytest.mark.parametrize("name", registered_names())
def test_registry_strides_match_the_built_network(name):
    size = 32 if "cifar" in name else 64  # the ImageNet VGG at a small probe: same strides
    built = model_strides(create_model(name, width=0.125), size)
    table = registry_strides(name, width=0.125)
    assert [(r["layer"], r["stride"]) for r in built] == [(r["layer"], r["stride"]) for r in table]


def test_resnet18_strides_by_hand():
    import torchvision

    rows = model_strides(torchvision.models.resnet18(), 224)
    by = {r["layer"]: r for r in rows}
    # conv1 stride 2, maxpool 2, layer2/3/4 each open with a stride-2 block
    hand = {"conv1": 2, "maxpool": 4, "layer1.1.conv2": 4, "layer2.0.conv1": 8,
            "layer2.0.downsample.0": 8, "layer3.1.conv2": 16, "layer4.0.conv2": 32}  # fmt: skip
    assert {k: by[k]["stride"] for k in hand} == hand
    assert by["layer4.1.conv2"]["size"] == 7 and by["layer4.1.conv2"]["shifted_copies"] == 1024
    # the global average pool has no grid of its own: the stride of the map it pools
    assert by["avgpool"]["stride"] == 32 and by["avgpool"]["source"].startswith("global")


def test_models_strides_cli(capsys):
    assert main(["models", "vgg_cifar_strided", "--strides", "--width", "0.25"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "features.pool4" in x).split()
    assert line[-2:] == ["16", "256"]
    assert main(["models", "vgg_cifar_blurpool5", "--strides"]) == 0  # a sized blurpool
    assert "features.pool1" in capsys.readouterr().out
    assert main(["models", "torchvision:resnet18", "--strides"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.strip().startswith("avgpool"))
    assert line.split()[-2:] == ["32", "1024"]
    assert main(["models", "nothing_like_this", "--strides"]) == 2
    assert "no registered model" in capsys.readouterr().err


def test_measure_outputs_carry_the_strides(tmp_path):
    from defstab.io.tables import read_csv
    from fixtures_formats import write_cifar_batches

    write_cifar_batches(tmp_path / "cifar", n_per_batch=4)
    out = tmp_path / "m"
    assert main(["measure", "--model", "vgg_cifar_maxpool", "--width", "0.125", "--data",
                 f"cifar10:{tmp_path / 'cifar'}", "--images", "4", "--quiet",
                 "--out", str(out)]) == 0  # fmt: skip
    rows = read_csv(out / "sensitivity.csv")
    assert [(r["layer"], int(r["stride"])) for r in rows] == VGG_CIFAR
    assert all(int(r["shifted_copies"]) == int(r["stride"]) ** 2 for r in rows)
