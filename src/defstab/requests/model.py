"""Which model and which images a protocol runs on: the options every command shares.

:class:`ModelOptions` names a model (a registry name, ``torchvision:NAME``,
``timm:NAME``, ``path/to/file.py:factory`` or a ``defstab train`` folder) and its
weights; :class:`DataOptions` names the images and how they are prepared. Both are plain
dataclasses, importable without torch; the pipeline resolves them
(:mod:`defstab.pipeline.models`).
"""

from __future__ import annotations

from dataclasses import dataclass

from defstab.requests.fields import option

#: the model options a command has without a checkpoint (``train`` makes its own)
CHECKPOINT_FIELDS = ("checkpoint", "run", "step")


def read_workers_option():
    """``--read-workers``: processes that read and decode image files ahead of the model
    (a setting of speed: it changes no number)."""
    return option(
        0,
        affects_result=False,
        help="processes reading image files (folder data) while the model runs; default 0: "
        "read in this process",
    )


@dataclass
class ModelOptions:
    """A model and its weights, as the model options of every command give them."""

    model: str | None = option(
        help="registry name (see 'defstab models'), torchvision:NAME, timm:NAME, or "
        "path/to/file.py:factory"
    )
    checkpoint: str | None = option(
        help="weights: .safetensors (a 'defstab train' checkpoint or a state dict) or a torch "
        "file (loaded weights only)"
    )
    run: str | None = option(
        metavar="DIR",
        help="a 'defstab train' folder, or an experiment's OUT/networks/<network> folder: its "
        "model, settings and latest checkpoint (instead of --model)",
    )
    step: int | None = option(help="with --run: this step's checkpoint")
    pretrained: bool = option(
        False, help="download published weights (torchvision/timm; needs the internet)"
    )
    width: float | None = option(help="registry models: channel multiplier")
    num_classes: int | None = option(
        help="outputs of the classifier (registry, torchvision and timm models)"
    )
    padding: str | None = option(
        choices=("zeros", "circular"),
        help="how convolutions pad: circular wraps around (with aps downsampling, exact "
        "invariance to circular shifts); default: the model's own (zeros)",
    )
    init_seed: int | None = option(
        help="seed of the random initial weights, any model (default 0; for train, --seed)"
    )
    output_key: str | None = option(
        metavar="KEY",
        help="where the class scores are in the model's output: a dict key, a tuple index or "
        "an attribute (default: the tensor, element 0, 'logits', .logits)",
    )
    #: the option that asked for published weights, named if the download fails
    pretrained_option: str = "--pretrained"


@dataclass
class DataOptions:
    """The images and how they are prepared, as every command's data options give them."""

    data: str = option(
        "",
        required=True,
        help="folder:PATH (ImageFolder), cifar10:PATH (batches or JPEG folders), mnist:PATH "
        "(IDX files), or a .pt/.npy file of images",
    )
    split: str = option("test", choices=("train", "test"), help="the split of --data")
    image_size: int | None = option(
        help="resize+centre-crop folder images (default: the model's input size)"
    )
    normalize: str | None = option(
        help="imagenet, cifar10, mnist or none (default: what the model expects; the rule "
        "is stated in the output)"
    )
