"""The request of training (``defstab train``): a network trained with checkpoints and a
history of stability and smoothness, resumable in its folder."""

from __future__ import annotations

from dataclasses import dataclass

from defstab.requests.fields import option
from defstab.train.precision import PRECISIONS  # torch-free at import

#: the train command's own help for the data options it shares
DATA_HELP = {
    "data": "cifar10:PATH, mnist:PATH, folder:PATH (with train/ and val/), a .pt/.npy file, "
    "or synthetic[:C] (the paper's deformation task)",
    "normalize": "imagenet, cifar10, mnist or none (default: the data's statistics for "
    "registry and file models, ImageNet's for torchvision/timm)",
    "image_size": "resize+centre-crop folder images to this side",
}


@dataclass
class TrainRequest:
    """How ``defstab train`` trains (every field is one of its options)."""

    templates: str | None = option(
        help="synthetic task templates: mnist:PATH (default: built-in font digits)"
    )
    per_class: int = option(500, help="synthetic: train images per class")
    regenerate: bool = option(False, help="synthetic: new images every epoch")
    train_images: int | None = option(help="train on a seeded subset")
    test_images: int | None = option(help="evaluate on a seeded subset")
    random_labels: bool = option(
        False, help="replace train labels by uniform random labels fixed by --seed"
    )
    download: str | None = option(
        metavar="ROOT", help="download CIFAR-10/MNIST into ROOT first (needs the internet)"
    )
    epochs: int | None = option(help="epochs (default: the data's preset)")
    batch_size: int | None = option(help="images per step (default: the data's preset)")
    lr: float | None = option(help="learning rate (default: the data's preset)")
    weight_decay: float | None = option(help="weight decay (default: the data's preset)")
    momentum: float | None = option(help="SGD momentum (default: the data's preset)")
    schedule: str | None = option(
        choices=("cosine", "step"), help="learning-rate schedule (default: the data's preset)"
    )
    no_augment: bool = option(False, help="no random crop, no flip")
    augment_shift: int | None = option(
        metavar="PX",
        help="random crop + flip with shifts of −PX…+PX pixels (zero padding; default 4, 0 = "
        "flips only); turns augmentation on for data that defaults to none",
    )
    target_train_acc: float | None = option(
        metavar="A",
        help="stop at the first epoch end whose training-set accuracy (eval mode) reaches A "
        "(e.g. 0.95 to memorise random labels); --epochs is then the cap",
    )
    smooth_sigma: float = option(0.0, help="registry models: smooth init")
    seed: int = option(0, help="data order, augmentation, probe (and init)")
    precision: str = option(
        "auto",
        choices=PRECISIONS,
        help="fp32, or bf16 autocast (CPUs with bf16 dot products, GPUs from Ampere on); auto "
        "(default) = bf16 where the device computes it, else fp32 (said on stderr). Recorded "
        "in config.json as the precision used",
    )
    overwrite: bool = option(
        False,
        affects_result=False,
        help="start over in a train folder that holds a run with other settings",
    )
    init_from: str | None = option(
        metavar="RUN_OR_CHECKPOINT",
        help="start from these weights (a train folder's latest checkpoint, or a file), with a "
        "fresh schedule: how to train a finished network longer",
    )
