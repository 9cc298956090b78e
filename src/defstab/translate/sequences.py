"""ImageNet-P-style perturbation sequences (Hendrycks & Dietterich 2019), made on the fly
from any images at any resolution, with the generation parameters of the authors'
``make_imagenet_p.py`` / ``make_cifar_p.py`` as presets.

A sequence is F frames of one image. Geometric perturbations move the *source* image
(ImageNet-P: resized to 256 px) and keep its centred crop (224 px); noise perturbations
draw fresh noise on the crop for every frame after the first, clean one. Frames are kept
as floats in [0, 1]: the published set is 8-bit PNG frames encoded as H.264 video, which
defstab neither quantises nor compresses.

=================  =========================  ==========================================
perturbation       frame i (ImageNet-P)        how (as the script does it)
=================  =========================  ==========================================
translate          (i − 20) px right, 41      ``affine(translate)``, nearest, zero fill
rotate             (i − 15)°, 31              ``affine(angle)``, bilinear, zero fill
tilt               pitch = yaw = (i − 15)°    pinhole homography, f = √(w² + h²), bilinear
scale              (40 + 2.5 i)/100, 31       ``affine(scale)``, bilinear, zero fill
gaussian_noise     clip(x + σ·N(0, 1))        σ = 0.03 / 0.05 / 0.08 for difficulty 1/2/3
shot_noise         clip(Poisson(λx)/λ)        λ = 300 / 120 / 60
=================  =========================  ==========================================
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torchvision.transforms.functional as TF
from torchvision.transforms import InterpolationMode

from defstab._validate import check_images

PERTURBATIONS = ("translate", "rotate", "tilt", "scale", "gaussian_noise", "shot_noise")
NOISES = ("gaussian_noise", "shot_noise")


@dataclass(frozen=True)
class SequencePreset:
    """The generation parameters of one ImageNet-P script.

    Attributes:
        source_size, crop: geometric perturbations move a ``source_size``-px image and
            keep its centred ``crop``-px window (None: the images' own size, no crop).
        translate: (first, frames): frame i moves the content by first + i px.
        rotate: (first, step, frames): frame i rotates by first + step·i degrees.
        tilt: (first, step, frames): pitch = yaw = first + step·i degrees.
        scale: (first, step, frames): frame i scales by first + step·i.
        gaussian_sigma, shot_lambda: per difficulty 1, 2, 3; noise sequences have
            ``noise_frames`` frames, the first clean.
    """

    name: str
    source_size: int | None
    crop: int | None
    translate: tuple[int, int] = (-20, 41)
    rotate: tuple[float, float, int] = (-15.0, 1.0, 31)
    tilt: tuple[float, float, int] = (-15.0, 1.0, 31)
    scale: tuple[float, float, int] = (0.40, 0.025, 31)
    gaussian_sigma: tuple[float, float, float] = (0.03, 0.05, 0.08)
    shot_lambda: tuple[float, float, float] = (300.0, 120.0, 60.0)
    noise_frames: int = 31

    def record(self) -> dict:
        return asdict(self)

    def frames(self, perturbation: str) -> int:
        if perturbation in NOISES:
            return self.noise_frames
        return getattr(self, perturbation)[-1]


SEQUENCE_PRESETS = {
    # make_imagenet_p.py: Resize(256), the perturbation, CenterCrop(224)
    "imagenet-p": SequencePreset("imagenet-p", 256, 224),
    # make_cifar_p.py: 32-px images, CenterCrop(32) (none); the noise levels and the tilt
    # and scale steps of its (commented-out) loops, in their order for difficulty 1, 2, 3
    "cifar-p": SequencePreset(
        "cifar-p",
        None,
        None,
        translate=(-7, 16),
        tilt=(-11.25, 0.75, 31),
        scale=(0.70, 0.02, 31),
        gaussian_sigma=(0.02, 0.04, 0.06),
        shot_lambda=(700.0, 400.0, 200.0),
    ),
}


def get_sequence_preset(name: str) -> SequencePreset:
    if name not in SEQUENCE_PRESETS:
        raise ValueError(
            f"unknown sequence preset {name!r}; choose from {', '.join(SEQUENCE_PRESETS)}."
        )
    return SEQUENCE_PRESETS[name]


def _centre(images: torch.Tensor, crop: int | None) -> torch.Tensor:
    if crop is None:
        return images
    h, w = images.shape[-2:]
    if crop > min(h, w):
        raise ValueError(f"a {crop} px centre crop does not fit images of {h}×{w} px.")
    top, left = (h - crop) // 2, (w - crop) // 2
    return images[..., top : top + crop, left : left + crop]


def tilt_matrix(degrees: float, width: int, height: int) -> torch.Tensor:
    """(3, 3) homography of the ImageNet-P tilt: the image centred, rotated by ``degrees``
    about x (pitch) and y (yaw), pushed back by f = √(w² + h²) and projected with focal
    length f: P2·T·RX·RY·P1 of ``make_imagenet_p.py``, mapping source to output pixels
    (cv2's, centres at integers). As theirs, its P1 puts the image at depth 1 + f, not f:
    even at 0° the frame is zoomed out by f/(1 + f) about the centre (w/2, h/2)."""
    phi = theta = math.radians(degrees)
    w, h = float(width), float(height)
    f = math.hypot(w, h)
    p1 = torch.tensor([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1], [0, 0, 1]], dtype=torch.float64)
    rx = torch.tensor([[1, 0, 0, 0], [0, math.cos(theta), -math.sin(theta), 0],
                       [0, math.sin(theta), math.cos(theta), 0], [0, 0, 0, 1]],
                      dtype=torch.float64)  # fmt: skip
    ry = torch.tensor([[math.cos(phi), 0, -math.sin(phi), 0], [0, 1, 0, 0],
                       [math.sin(phi), 0, math.cos(phi), 0], [0, 0, 0, 1]],
                      dtype=torch.float64)  # fmt: skip
    t = torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, f], [0, 0, 0, 1]], dtype=torch.float64)
    p2 = torch.tensor([[f, 0, w / 2, 0], [0, f, h / 2, 0], [0, 0, 1, 0]], dtype=torch.float64)
    return p2 @ t @ rx @ ry @ p1


def _tilt(images: torch.Tensor, degrees: float) -> torch.Tensor:
    """``cv2.warpPerspective(x, tilt_matrix(...))`` by torchvision's perspective: the
    four corners mapped by the homography. cv2 puts pixel centres at integers and
    torchvision at integers + ½, hence the ½ added to both sets of points."""
    h, w = images.shape[-2:]
    mat = tilt_matrix(degrees, w, h)
    corners = [[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]]
    src = torch.tensor([[x, y, 1.0] for x, y in corners], dtype=torch.float64)
    dst = src @ mat.T
    ends = (dst[:, :2] / dst[:, 2:] + 0.5).tolist()
    starts = [[x + 0.5, y + 0.5] for x, y in corners]
    return TF.perspective(images, starts, ends, InterpolationMode.BILINEAR, fill=0.0)


def _translate(images: torch.Tensor, shifts: list[int]) -> torch.Tensor:
    """Every image moved right by each integer shift, zero fill (nearest-neighbour affine
    by whole pixels is exact): (N, C, H, W) -> (N, F, C, H, W), by padding and slicing."""
    k = max(abs(s) for s in shifts)
    w = images.shape[-1]
    padded = torch.nn.functional.pad(images, (k, k))
    return torch.stack([padded[..., k - s : k - s + w] for s in shifts], dim=1)


def make_sequence(
    images: torch.Tensor,
    perturbation: str,
    preset: SequencePreset,
    difficulty: int = 1,
    generator: torch.Generator | None = None,
):
    """The frames of one perturbation for every image.

    Args:
        images: (N, C, S, S) in [0, 1] at the preset's source size (or any size when the
            preset has none).

    Returns:
        ``(frames (N, F, C, crop, crop), parameters (F,) the shift, angle, scale or noise
        level of each frame)``.
    """
    check_images(images)
    if perturbation not in PERTURBATIONS:
        raise ValueError(
            f"unknown perturbation {perturbation!r}; choose from {', '.join(PERTURBATIONS)}."
        )
    if difficulty not in (1, 2, 3):
        raise ValueError(f"difficulty must be 1, 2 or 3 (ImageNet-P's), got {difficulty!r}.")
    if preset.source_size is not None and images.shape[-1] != preset.source_size:
        raise ValueError(
            f"the {preset.name} preset moves {preset.source_size}-px images; these are "
            f"{images.shape[-1]} px."
        )
    if perturbation in NOISES:
        return _noise_sequence(_centre(images, preset.crop), perturbation, preset, difficulty,
                               generator)  # fmt: skip
    if perturbation == "translate":
        first, n = preset.translate
        shifts = [first + i for i in range(n)]
        return _centre(_translate(images, shifts), preset.crop), torch.tensor(shifts)
    first, step, n = getattr(preset, perturbation)
    values = [first + step * i for i in range(n)]
    frames = []
    for v in values:  # one call per frame, every image at once
        if perturbation == "rotate":
            out = TF.affine(images, angle=v, translate=[0, 0], scale=1.0, shear=[0.0],
                            interpolation=InterpolationMode.BILINEAR, fill=0.0)  # fmt: skip
        elif perturbation == "scale":
            out = TF.affine(images, angle=0.0, translate=[0, 0], scale=v, shear=[0.0],
                            interpolation=InterpolationMode.BILINEAR, fill=0.0)  # fmt: skip
        else:
            out = _tilt(images, v)
        frames.append(_centre(out, preset.crop))
    return torch.stack(frames, dim=1), torch.tensor(values, dtype=torch.float64)


def _noise_sequence(x, perturbation, preset, difficulty, generator):
    n = preset.noise_frames
    rep = x.unsqueeze(1).expand(-1, n - 1, *x.shape[1:])
    if perturbation == "gaussian_noise":
        level = preset.gaussian_sigma[difficulty - 1]
        noise = torch.randn(rep.shape, generator=generator, dtype=x.dtype)
        noisy = (rep + level * noise.to(x.device)).clamp(0, 1)
    else:
        level = preset.shot_lambda[difficulty - 1]
        noisy = (torch.poisson((rep * level).cpu(), generator=generator) / level).clamp(0, 1)
        noisy = noisy.to(x.device, x.dtype)
    frames = torch.cat([x.unsqueeze(1), noisy], dim=1)
    return frames, torch.tensor([0.0] + [level] * (n - 1), dtype=torch.float64)
