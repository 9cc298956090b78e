"""Template images for the synthetic tasks: MNIST digits, or digits rendered from a font
that ships with matplotlib (DejaVu Sans), so the task runs with no data at all."""

from __future__ import annotations

import numpy as np
import torch

from defstab.data.sources import ImageDataset


def font_digit_templates(size: int = 28, classes: int = 10) -> torch.Tensor:
    """(classes, 1, size, size) float32 in [0, 1]: the glyphs "0"…"9" (then "A"…) in white
    on black, centred, about 70% of the image tall, like MNIST."""
    from matplotlib import font_manager
    from PIL import Image, ImageDraw, ImageFont

    path = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans", weight="bold"))
    glyphs = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    if classes > len(glyphs):
        raise ValueError(f"built-in templates exist for at most {len(glyphs)} classes.")
    scale = 4  # draw large, then downsample: smooth, anti-aliased strokes
    font = ImageFont.truetype(path, int(size * scale * 0.72))
    out = []
    for ch in glyphs[:classes]:
        canvas = Image.new("L", (size * scale, size * scale), 0)
        draw = ImageDraw.Draw(canvas)
        left, top, right, bottom = draw.textbbox((0, 0), ch, font=font)
        x = (size * scale - (right - left)) / 2 - left
        y = (size * scale - (bottom - top)) / 2 - top
        draw.text((x, y), ch, fill=255, font=font)
        small = canvas.resize((size, size), Image.BILINEAR)
        out.append(torch.from_numpy(np.asarray(small, dtype=np.float32) / 255.0))
    return torch.stack(out)[:, None]


def mnist_templates(mnist: ImageDataset, seed: int, classes: int = 10) -> torch.Tensor:
    """One MNIST image per class, chosen by ``seed``: (classes, 1, 28, 28)."""
    gen = torch.Generator().manual_seed(seed)
    picks = []
    for c in range(classes):
        idx = torch.nonzero(mnist.labels == c).flatten()
        if idx.numel() == 0:
            raise ValueError(f"the MNIST data has no image of class {c}.")
        picks.append(int(idx[torch.randint(idx.numel(), (1,), generator=gen)]))
    return mnist.images(picks)
