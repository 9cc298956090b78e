"""Image data sets in their real formats, and synthetic tasks."""

from defstab.data.sources import (
    ImageDataset,
    load_data,
    read_cifar10_batches,
    read_idx,
    read_image_folder,
    read_tensor_file,
)

__all__ = [
    "ImageDataset",
    "load_data",
    "read_cifar10_batches",
    "read_idx",
    "read_image_folder",
    "read_tensor_file",
]
