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
    assert line[3:6] == ["16", "256", "architecture"]
    assert main(["models", "vgg_cifar_blurpool5", "--strides"]) == 0  # a sized blurpool
    assert "features.pool1" in capsys.readouterr().out
    assert main(["models", "torchvision:resnet18", "--strides"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.strip().startswith("avgpool"))
    assert line.split()[3:6] == ["32", "1024", "global"]
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


# --- strides from the network, never from the input size -------------------------------

RESNET18 = {"conv1": 2, "maxpool": 4, "layer1": 4, "layer2": 8, "layer3": 16, "layer4": 32,
            "avgpool": 32}  # fmt: skip


def _cli_strides(capsys, *argv) -> dict:
    assert main(["models", *argv, "--strides"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    return {r[0]: int(r[3]) for r in rows if len(r) >= 6 and r[3].isdigit()}


@pytest.mark.parametrize("size", [32, 196, 224])
def test_resnet18_strides_are_the_same_at_every_input_size(capsys, size):
    table = _cli_strides(capsys, "torchvision:resnet18", "--image-size", str(size))
    convs = {"conv1": 2, "maxpool": 4, "layer1.1.conv2": 4, "layer2.0.conv1": 8,
             "layer3.1.conv2": 16, "layer4.0.downsample.0": 32, "avgpool": 32}  # fmt: skip
    assert {k: table[k] for k in convs} == convs
    # 196 px: layer4's map is 7 px wide, and 196 / 7 = 28 is not its stride
    assert table["layer4.1.conv2"] == 32


def test_resnet18_strides_agree_in_measure_and_translate(tmp_path):
    from defstab.io.tables import read_csv
    from fixtures_formats import write_image_folder

    data = write_image_folder(tmp_path / "imgs", per_class=2, size=(40, 40))
    common = ["--model", "torchvision:resnet18", "--data", f"folder:{data}", "--quiet"]
    layers = ",".join(RESNET18)
    assert main(["measure", *common, "--images", "3", "--image-size", "36", "--no-noise",
                 "--layers", layers, "--out", str(tmp_path / "m")]) == 0  # fmt: skip
    measured = {r["layer"]: int(r["stride"]) for r in read_csv(tmp_path / "m" / "sensitivity.csv")}
    assert {k: measured[k] for k in RESNET18} == RESNET18
    assert main(["translate", *common, "--images", "3", "--image-size", "36", "--steps", "4",
                 "--protocol", "crop", "--layers", "--out", str(tmp_path / "t")]) == 0  # fmt: skip
    rows = [r | {k: int(r[k]) for k in ("stride", "shift", "multiple_of_stride")}
            for r in read_csv(tmp_path / "t" / "layers.csv")]  # fmt: skip
    shifted = {r["layer"]: r["stride"] for r in rows}
    assert {k: shifted[k] for k in ("conv1", "layer3.1.conv2", "layer4.1.conv2", "avgpool")} == {
        "conv1": 2, "layer3.1.conv2": 16, "layer4.1.conv2": 32, "avgpool": 32}  # fmt: skip
    assert all(r["multiple_of_stride"] == int(r["shift"] % r["stride"] == 0) for r in rows)


@pytest.mark.parametrize(
    "name", ["efficientnet_b0", "convnext_tiny", "resnet50", "mobilenetv3_small_100"]
)
def test_network_strides_equal_timm_declared_reductions(name):
    """timm declares each stage's reduction; the network's arithmetic must find the same."""
    timm = pytest.importorskip("timm")
    from defstab.tap import declared_features, grid_strides

    model = timm.create_model(name)
    declared = declared_features(model)
    for size in (64, 224):
        found = grid_strides(model, list(declared), (3, size, size))
        assert {k: v[0] for k, v in found.items()} == {
            k: d["reduction"] for k, d in declared.items()
        }


@pytest.mark.parametrize(
    "name,hand",
    [
        ("efficientnet_b0", [2, 2, 4, 8, 16, 16, 32, 32, 32]),
        ("convnext_tiny", [4, 4, 8, 8, 16, 16, 32, 32]),  # stem 4×4/4, then 2×2/2 downsamples
    ],
)
def test_torchvision_strides_by_hand(name, hand):
    import torchvision

    model = torchvision.models.get_model(name)
    names = [f"features.{i}" for i in range(len(hand))]
    for size in (32, 224):
        rows = {r["layer"]: r for r in model_strides(model, size, layers=names)}
        assert [rows[n]["stride"] for n in names] == hand
        assert {rows[n]["source"] for n in names} == {"network"}


def test_vit_blocks_get_the_patch_size_and_fixed_size_models_say_inferred(tmp_path, capsys):
    timm = pytest.importorskip("timm")

    from torchvision.models.vision_transformer import VisionTransformer

    rows = model_strides(timm.create_model("vit_tiny_patch16_224"), 224)  # timm declares it
    blocks = [r for r in rows if r["layer"].startswith("blocks.")]
    assert blocks and {(r["stride"], r["shifted_copies"]) for r in blocks} == {(16, 256)}
    vit = VisionTransformer(32, 8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32)
    rows = model_strides(vit, 32)  # torchvision declares nothing: its patch size
    assert [(r["layer"], r["stride"], r["source"]) for r in rows[1:]] == [
        ("conv_proj", 8, "patch size"),
        ("encoder.layers.encoder_layer_0", 8, "patch size"),
        ("encoder.layers.encoder_layer_1", 8, "patch size"),
    ]
    # a model that refuses every other input size: its strides can only be inferred, and
    # the command says so
    (tmp_path / "fixed.py").write_text(
        "import torch\nfrom torch import nn\n\n"
        "class Fixed(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)\n"
        "    def forward(self, x):\n"
        "        assert x.shape[-1] == 32, 'this model takes 32 px'\n"
        "        return self.conv(x)\n\n"
        "def make():\n    return Fixed()\n"
    )
    assert main(["models", f"{tmp_path / 'fixed.py'}:make", "--strides", "--image-size", "32"]) == 0
    captured = capsys.readouterr()
    assert "conv" in captured.out and "inferred" in captured.out
    assert "tells the strides of conv" in captured.err and "inferred" in captured.err
