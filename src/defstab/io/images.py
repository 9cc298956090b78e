"""Read image files into float tensors in [0, 1]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def read_image(path: str | Path, size: int | None = None) -> torch.Tensor:
    """Read an RGB image as a (3, H, W) float32 tensor in [0, 1].

    Args:
        path: any format Pillow reads.
        size: if given, resize the short side to ``size`` and centre-crop to size×size.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if size is not None:
                im = _resize_center_crop(im, size)
            arr = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"cannot read {path} as an image ({e}).") from None
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def _resize_center_crop(im, size: int):
    from PIL import Image

    w, h = im.size
    scale = size / min(w, h)
    im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
    w, h = im.size
    left, top = (w - size) // 2, (h - size) // 2
    return im.crop((left, top, left + size, top + size))
