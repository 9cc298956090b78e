"""Vision transformers and hybrids: default layers (every block), token options, tuple
outputs, and each model's own input settings. Tiny configurations built here, random
weights, nothing downloaded."""

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from defstab.deform import DeformationSpec, apply_tps
from defstab.measure import measure_sensitivity
from defstab.measure.layers import default_layers, prefix_tokens, transformer_blocks

timm = pytest.importorskip("timm")
tvm = pytest.importorskip("torchvision.models")


def tiny_timm_vit():
    torch.manual_seed(0)
    return timm.create_model(
        "vit_tiny_patch16_224",
        pretrained=False,
        img_size=32,
        patch_size=8,
        depth=3,
        embed_dim=16,
        num_heads=2,
        num_classes=10,
    ).eval()


def tiny_torchvision_vit():
    torch.manual_seed(0)
    return tvm.VisionTransformer(
        image_size=32, patch_size=8, num_layers=3, num_heads=2, hidden_dim=16, mlp_dim=32,
        num_classes=10,
    ).eval()  # fmt: skip


class Hybrid(nn.Module):
    """A conv stem with pooling, then torch's own transformer layers on the 4×4 tokens."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4))
        self.proj = nn.Conv2d(8, 16, 2, stride=2)
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        tokens = self.proj(self.stem(x)).flatten(2).transpose(1, 2)  # (N, 16, 16)
        return self.head(self.encoder(tokens).mean(1))


def normalized_by_brute_force(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image cosine distance / median over pairs of undeformed images (loops)."""

    def cos(u, v):
        return 1 - u @ v / (np.linalg.norm(u) * np.linalg.norm(v))

    pairs = [cos(a[i], a[j]) for i, j in itertools.combinations(range(len(a)), 2)]
    return np.array([cos(a[i], b[i]) for i in range(len(a))]) / np.median(pairs)


def test_default_layers_for_transformers_cnns_and_hybrids():
    assert default_layers(tiny_timm_vit()) == [
        "patch_embed.proj",
        "blocks.0",
        "blocks.1",
        "blocks.2",
    ]
    assert default_layers(tiny_torchvision_vit()) == ["conv_proj"] + [
        f"encoder.layers.encoder_layer_{i}" for i in range(3)
    ]
    assert default_layers(Hybrid()) == [
        "stem.0",
        "stem.2",
        "proj",
        "encoder.layers.0",
        "encoder.layers.1",
    ]
    swin = timm.create_model(
        "swin_tiny_patch4_window7_224", pretrained=False, img_size=32, patch_size=2,
        window_size=4, embed_dim=8, depths=(1, 2), num_heads=(1, 2), num_classes=10,
    )  # fmt: skip
    # nested stages: the innermost block lists, not the list of stages
    assert transformer_blocks(swin) == [
        "layers.0.blocks.0",
        "layers.1.blocks.0",
        "layers.1.blocks.1",
    ]
    resnet = tvm.resnet18(num_classes=10)
    assert transformer_blocks(resnet) == [] and default_layers(resnet)[:2] == ["conv1", "maxpool"]
    assert prefix_tokens(tiny_timm_vit()) == 1 and prefix_tokens(tiny_torchvision_vit()) == 1
    with pytest.raises(ValueError, match="class tokens"):
        prefix_tokens(Hybrid())


def test_vit_blocks_against_the_libraries_own_feature_extractors():
    """tokens='all' against torchvision's feature extractor (class token included);
    tokens='patches' against timm's forward_intermediates (patch tokens only)."""
    from torchvision.models.feature_extraction import create_feature_extractor

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 32, 32, generator=gen)
    disp = torch.randn(6, 9, 2, generator=gen)
    tx = apply_tps(x, disp, 3)

    tv = tiny_torchvision_vit()
    res = measure_sensitivity(tv, x, disp, noise_control=False)
    assert res.layers[-1] == "encoder.layers.encoder_layer_2" and res.meta["tokens"] == "all"
    fx = create_feature_extractor(tv, {"encoder.layers.encoder_layer_1": "b"})
    with torch.no_grad():
        a, b = fx(x)["b"], fx(tx)["b"]
    assert a.shape == (6, 17, 16)  # 16 patches + the class token
    expected = normalized_by_brute_force(
        a.flatten(1).double().numpy(), b.flatten(1).double().numpy()
    )
    np.testing.assert_allclose(
        res.per_image[res.layers.index("encoder.layers.encoder_layer_1")], expected, rtol=1e-4
    )

    vit = tiny_timm_vit()
    res = measure_sensitivity(vit, x, disp, noise_control=False, tokens="patches")
    with torch.no_grad():
        kw = dict(indices=[1], output_fmt="NLC", intermediates_only=True, norm=False)
        a, b = vit.forward_intermediates(x, **kw)[0], vit.forward_intermediates(tx, **kw)[0]
    assert a.shape == (6, 16, 16)  # patch tokens only
    expected = normalized_by_brute_force(
        a.flatten(1).double().numpy(), b.flatten(1).double().numpy()
    )
    np.testing.assert_allclose(res.per_image[res.layers.index("blocks.1")], expected, rtol=1e-4)
    # with the class token the numbers differ: the option does something
    full = measure_sensitivity(vit, x, disp, noise_control=False, tokens="all")
    assert not torch.allclose(full.per_image[2:], res.per_image[2:])
    torch.testing.assert_close(full.per_image[:2], res.per_image[:2])  # input, patch conv


def test_tuple_outputs_say_which_element():
    model = Hybrid().eval()
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    res = measure_sensitivity(
        model, x, DeformationSpec(3, 2.0), layers="encoder.layers.0.self_attn,proj",
        generator=torch.Generator().manual_seed(0), noise_control=False,
    )  # fmt: skip
    assert res.meta["tuple_outputs"] == {"encoder.layers.0.self_attn": "element 0 of a tuple of 2"}
    with pytest.raises(ValueError, match="tokens must be"):
        measure_sensitivity(model, x, layers="proj", tokens="cls")


def test_each_model_gets_its_own_input_settings():
    """timm's vit_base_patch16_224 wants mean = std = 0.5; inception_v3 wants 299 px."""
    from defstab.models.input_config import model_input_config
    from defstab.models.loading import native_input_size

    with torch.device("meta"):  # the full-size models' settings, no weights in memory
        vit = timm.create_model("vit_base_patch16_224", pretrained=False)
    config = model_input_config(vit, "timm:vit_base_patch16_224")
    assert config.mean == (0.5, 0.5, 0.5) and config.std == (0.5, 0.5, 0.5) and config.size == 224
    assert config.normalization() == {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
    inception = model_input_config(None, "torchvision:inception_v3")
    assert inception.size == 299 and inception.normalization() == "imagenet"
    with torch.device("meta"):
        tm_inception = timm.create_model("inception_v3", pretrained=False)
    assert native_input_size(tm_inception, "timm:inception_v3") == 299
    assert model_input_config(None, "vgg_cifar_maxpool") is None


def test_measure_cli_on_a_timm_vit(tmp_path, capsys):
    """`defstab measure --model timm:...`: every block by default, the model's own mean/std
    recorded, --normalize overriding it, --tokens recorded."""
    import json

    from defstab.cli.main import main
    from defstab.io.tables import read_csv

    data = tmp_path / "imgs.pt"
    gen = torch.Generator().manual_seed(0)
    torch.save((torch.rand(3, 3, 224, 224, generator=gen) * 255).to(torch.uint8), data)
    argv = ["measure", "--model", "timm:vit_tiny_patch16_224", "--data", str(data),
            "--images", "3", "--quiet", "--no-noise"]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "a"), "--tokens", "patches"]) == 0
    layers = [r["layer"] for r in read_csv(tmp_path / "a" / "sensitivity.csv")]
    assert layers == ["input", "patch_embed.proj"] + [f"blocks.{i}" for i in range(12)]
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["normalize"] == {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
    assert config["input_config"]["size"] == 224 and config["tokens"] == "patches"
    assert main([*argv, "--out", str(tmp_path / "b"), "--normalize", "imagenet"]) == 0
    assert json.loads((tmp_path / "b" / "config.json").read_text())["normalize"] == "imagenet"
    with pytest.raises(SystemExit) as stop:  # argparse's own one-line error
        main([*argv, "--out", str(tmp_path / "c"), "--tokens", "cls"])
    assert stop.value.code == 2 and "--tokens" in capsys.readouterr().err
