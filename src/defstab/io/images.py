"""Read image files into float tensors in [0, 1]."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

#: the conversions already said in this process (each is said once, naming a first file)
_SAID: set[str] = set()
_ALPHA = {"RGBA", "LA", "PA", "RGBa", "La"}
_GREY = {"L", "1", "I", "I;16", "F"}


def _say_conversion(im, path: Path) -> None:
    """One warning per kind of conversion: an alpha channel dropped, or grey replicated
    to three channels (the tensor is RGB either way; the user should know)."""
    alpha = im.mode in _ALPHA or (im.mode == "P" and "transparency" in im.info)
    kind = "alpha" if alpha else "grey" if im.mode in _GREY else None
    if kind is None or kind in _SAID:
        return
    _SAID.add(kind)
    what = (
        f"images with an alpha channel ({im.mode}, e.g. {path}) are read as RGB: the alpha "
        "channel is dropped, not composited"
        if kind == "alpha"
        else f"greyscale images ({im.mode}, e.g. {path}) are read as RGB: the grey channel "
        "is copied to all three"
    )
    print(f"defstab: warning: {what} (said once).", file=sys.stderr)


def read_image(path: str | Path, size: int | None = None, crop: bool = True) -> torch.Tensor:
    """Read an RGB image as a (3, H, W) float32 tensor in [0, 1].

    Args:
        path: any format Pillow reads.
        size: if given, resize the short side to ``size`` and centre-crop to size×size.
        crop: False keeps the aspect: the short side resized to ``size`` and the long side
            to ⌊size · long / short⌋, as torchvision's ``Resize(size)`` (ImageNet-P's
            sequences perturb that whole image and crop after).
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as im:
            _say_conversion(im, path)
            im = im.convert("RGB")
            if size is not None:
                im = _resize_center_crop(im, size) if crop else _resize_short_side(im, size)
            arr = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"cannot read {path} as an image ({e}).") from None
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def _resize_short_side(im, size: int):
    """Short side to ``size``, long side to int(size · long / short) (torchvision's
    ``Resize(int)`` truncates), bilinear."""
    from PIL import Image

    w, h = im.size
    if w <= h:
        new = (size, int(size * h / w))
    else:
        new = (int(size * w / h), size)
    return im if new == (w, h) else im.resize(new, Image.BILINEAR)


def _resize_center_crop(im, size: int):
    from PIL import Image

    w, h = im.size
    scale = size / min(w, h)
    im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
    w, h = im.size
    left, top = (w - size) // 2, (h - size) // 2
    return im.crop((left, top, left + size, top + size))
