"""Which rotation centre made the published ImageNet-P frames? defstab's frames with the
authors' centre (w/2 + ½, h/2 + ½) and with today's (w/2, h/2), each against PIL with
torchvision 0.2's affine matrix (the 2018 code that made the videos), on real ImageNet
images: the share of pixels that differ by more than 2/255, and the mean difference.

    python benchmarks/check_imagenet_p_centre.py [--images 10] [--root DIR]

DIR: a folder of ImageNet images (default: ../shared/data/imagenet-samples.tar, unpacked
into a temporary folder).
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from defstab.io.images import read_image  # noqa: E402
from defstab.translate.sequences import get_sequence_preset, make_sequence  # noqa: E402
from test_imagenet_p_edges import _pil_2018  # noqa: E402  (the 2018 procedure, ported)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--root", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.root) if args.root else None
        if root is None:
            with tarfile.open(ROOT.parent / "shared" / "data" / "imagenet-samples.tar") as tar:
                tar.extractall(tmp, filter="data")
            root = Path(tmp)
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
        files = files[: args.images]
        preset = get_sequence_preset("imagenet-p")
        stats = {"authors": [], "modern": []}
        for path in files:
            x = read_image(path, 256, crop=False)
            pil = Image.fromarray((x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
            x = torch.from_numpy(np.asarray(pil).copy()).permute(2, 0, 1).float()[None] / 255
            for perturbation, j in (("rotate", 20), ("scale", 10)):
                angle, scale = (
                    (-15.0 + j, 1.0) if perturbation == "rotate" else (0.0, 0.4 + 0.025 * j)
                )
                ref = TF.center_crop(TF.pil_to_tensor(_pil_2018(pil, angle, scale)), [224, 224])
                for centre, rows in stats.items():
                    frames, _ = make_sequence(x, perturbation, preset, centre=centre)
                    diff = (frames[0, j] - ref.float() / 255).abs()
                    rows.append((float((diff > 2 / 255).float().mean()), float(diff.mean()) * 255))
    print(
        f"{len(files)} ImageNet images, rotate 5° and scale 0.65, against PIL with the 2018 matrix"
    )
    for centre, rows in stats.items():
        share, mean = np.mean(rows, axis=0)
        print(f"  centre {centre:<8} pixels > 2/255: {share:6.2%}   mean |diff|: {mean:.2f}/255")


if __name__ == "__main__":
    main()
