"""The command line answers at once: --version, --help and `models` never import torch, and
the torch-free description of the registry agrees with the built networks."""

import subprocess
import sys

import pytest

from defstab.models.architectures import DOWNSAMPLING, describe, registered_names

PROBE = """
import sys
from defstab.cli.main import main
try:
    main({argv!r})
except SystemExit:  # --version and --help exit from argparse
    pass
heavy = sorted(m for m in ("torch", "torchvision", "numpy", "matplotlib") if m in sys.modules)
print("HEAVY:", ",".join(heavy))
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["--version"],
        ["--help"],
        ["models"],
        ["models", "--help"],
        ["models", "vgg_cifar_maxpool", "--strides"],
        ["experiment", "--help"],  # the experiments' names without the experiments
        ["measure", "--help"],
        ["train", "--help"],
    ],
)
def test_cli_startup_imports_no_torch(argv):
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True
    )
    assert out.stdout.rstrip().splitlines()[-1] == "HEAVY:", out.stdout[-300:]


def test_import_defstab_is_light_until_used():
    code = (
        "import sys, defstab; assert 'torch' not in sys.modules; "
        "defstab.create_model('vgg_cifar_maxpool', width=0.25); assert 'torch' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", registered_names() + ["vgg_cifar_blurpool5"])
def test_description_matches_the_built_network(name):
    from defstab.models import create_model
    from defstab.models.summary import count_flops, count_parameters

    width = 0.25 if "cifar" in name else 0.125
    info = describe(name, width)
    model = create_model(name, width=width)
    assert info["params"] == count_parameters(model)
    assert info["flops"] == count_flops(model, info["input"])  # meta-device forward pass
    assert info["layers"] == len(model.representation_points) + 1
    assert info["strides"][1:] == [p["reduction"] for p in model.feature_info]
    assert info["input"] == (model.in_channels, model.input_size, model.input_size)


def test_registered_names_are_the_registry():
    from defstab.models import DOWNSAMPLERS, list_models

    assert set(DOWNSAMPLERS) == set(DOWNSAMPLING)
    assert sorted(registered_names()) == list_models()
    with pytest.raises(ValueError, match="not a registry network"):
        describe("resnet18")


def test_the_torch_free_index_of_experiments_is_the_registry():
    """`experiment --help` lists the experiments from defstab.experiments.index; the
    registry (which imports every experiment) has the same names in the same order."""
    from defstab.experiments.index import SUMMARIES
    from defstab.experiments.registry import get_experiment, list_experiments

    assert list(SUMMARIES) == list_experiments()
    assert all(get_experiment(n).summary == SUMMARIES[n] for n in SUMMARIES)
