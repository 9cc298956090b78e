"""ImageNet-P-style perturbation sequences (Hendrycks & Dietterich 2019), made on the fly
from any images at any resolution, with the generation parameters of the authors'
``make_imagenet_p.py`` / ``make_cifar_p.py`` as presets.

A sequence is F frames of one image. Geometric perturbations move the whole *source*
image (ImageNet-P: its short side resized to 256 px, any aspect) and keep its centred
crop (224 px), as ``make_imagenet_p.py`` does — so a rotation or a zoom-out brings in
content from outside the central square; noise perturbations draw fresh noise on the
crop for every frame after the first, clean one. Rotations and scalings turn about
(w/2 + ½, h/2 + ½) by default, as the 2018 torchvision that made the published videos
did (``centre="modern"``: today's (w/2, h/2)). Images of different sizes are warped
together on one canvas (:class:`~defstab.data.stream.PaddedImages`), each about its own
centre. Frames are kept
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

from defstab._validate import check_images
from defstab.requests.perturb import PERTURBATIONS  # one list, shared with the request

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


#: where rotations and scalings turn: "authors" — torchvision 2018 (PIL), about
#: (w/2 + ½, h/2 + ½) in pixel-centre coordinates, as the published ImageNet-P videos were
#: made; "modern" — torchvision today, about the image centre (w/2, h/2)
CENTRES = ("authors", "modern")


def _layout(images) -> tuple[torch.Tensor, torch.Tensor]:
    """(canvas (N, C, H, W), sizes (N, 2) (h, w) of each image in its top-left)."""
    if hasattr(images, "canvas"):
        return images.canvas, images.sizes.long()
    n, _, h, w = images.shape
    return images, torch.tensor([[h, w]]).expand(n, 2)


def _windows(sizes: torch.Tensor, crop: int | None) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """Each image's centred crop window: (tops (N,), lefts (N,), height, width), placed
    as torchvision's ``CenterCrop`` places it (round((h − crop) / 2), halves to even)."""
    if crop is None:
        if len({tuple(r) for r in sizes.tolist()}) > 1:
            raise ValueError("a preset without a crop needs images of one size.")
        h, w = (int(v) for v in sizes[0])
        zero = torch.zeros(sizes.shape[0], dtype=torch.long)
        return zero, zero, h, w
    if crop > int(sizes.min()):
        h, w = (int(v) for v in sizes[sizes.min(1).values.argmin()])
        raise ValueError(f"a {crop} px centre crop does not fit images of {h}×{w} px.")
    tops = torch.round((sizes[:, 0] - crop).double() / 2).long()
    lefts = torch.round((sizes[:, 1] - crop).double() / 2).long()
    return tops, lefts, crop, crop


def _crop(canvas, tops, lefts, height, width, shifts=None, sizes=None) -> torch.Tensor:
    """(N, C, height, width) windows of the canvas — or (N, F, C, height, width) with the
    content moved right by each of ``shifts`` (F,) px, zeros where it leaves the image."""
    n, dev = canvas.shape[0], canvas.device
    tops, lefts = tops.to(dev), lefts.to(dev)
    rows = tops[:, None] + torch.arange(height, device=dev)  # (N, height)
    cols = lefts[:, None] + torch.arange(width, device=dev)  # (N, width)
    items = torch.arange(n, device=dev)
    if shifts is None:
        return canvas[items[:, None, None], :, rows[:, :, None], cols[:, None, :]].permute(
            0, 3, 1, 2
        )
    cols = cols[:, None, :] - torch.as_tensor(shifts, device=dev)[None, :, None]  # (N, F, w)
    inside = (cols >= 0) & (cols < sizes.to(dev)[:, 1, None, None])
    cols = cols.clamp(0, canvas.shape[-1] - 1)
    out = canvas[items[:, None, None, None], :, rows[:, None, :, None], cols[:, :, None, :]]
    return (out * inside[:, :, None, :, None]).permute(0, 1, 4, 2, 3)  # (N, F, C, h, w)


def _warped_crops(canvas, sizes, inverse, tops, lefts, height, width) -> torch.Tensor:
    """(N, C, height, width): each image's crop window of its warp, bilinear, zero fill.

    ``inverse`` (N, 3, 3) maps output to input positions in pixel-centre coordinates
    (pixel j spans [j, j + 1]). Sampling and the fill are torchvision's tensor ``affine``
    and ``perspective`` with ``fill=0``: zeros outside the image, and the warped
    image multiplied by the warped image mask (a border pixel is darkened by the share
    of its neighbourhood that lies outside)."""
    n, _, hc, wc = canvas.shape
    dev, f64 = canvas.device, torch.float64
    tops, lefts, sizes = tops.to(dev), lefts.to(dev), sizes.to(dev)
    ys = tops[:, None].double() + torch.arange(height, dtype=f64, device=dev) + 0.5  # (N, h)
    xs = lefts[:, None].double() + torch.arange(width, dtype=f64, device=dev) + 0.5  # (N, w)
    points = torch.stack(
        [
            xs[:, None, :].expand(n, height, width),
            ys[:, :, None].expand(n, height, width),
            torch.ones(n, height, width, dtype=f64, device=dev),
        ],
        dim=-1,
    )  # (N, h, w, 3)
    source = points @ inverse.to(dev).transpose(1, 2)[:, None]  # (N, h, w, 3)
    source = source[..., :2] / source[..., 2:]
    scale = torch.tensor([wc, hc], dtype=f64, device=dev)
    grid = (2 * source / scale - 1).to(canvas.dtype)
    valid = (torch.arange(hc, device=dev)[None, :, None] < sizes[:, 0, None, None]) & (
        torch.arange(wc, device=dev)[None, None, :] < sizes[:, 1, None, None]
    )
    both = torch.cat([canvas, valid[:, None].to(canvas.dtype)], dim=1)
    sampled = torch.nn.functional.grid_sample(
        both, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return sampled[:, :-1] * sampled[:, -1:]


def _affine_inverse(sizes, angle: float, scale: float, centre: str) -> torch.Tensor:
    """(N, 3, 3) output → input of a rotation by ``angle`` degrees (counter-clockwise on
    screen, as torchvision's ``affine``) and a scaling by ``scale`` about each image's
    centre: src = c + R(p − c) / scale, R = [[cos, sin], [−sin, cos]]."""
    a = math.radians(angle)
    r = torch.tensor([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]],
                     dtype=torch.float64) / scale  # fmt: skip
    c = sizes.flip(1).double() / 2 + (0.5 if centre == "authors" else 0.0)  # (N, 2) (x, y)
    out = torch.zeros(sizes.shape[0], 3, 3, dtype=torch.float64)
    out[:, :2, :2] = r
    out[:, :2, 2] = c - c @ r.T
    out[:, 2, 2] = 1
    return out


def _tilt_inverse(sizes, degrees: float) -> torch.Tensor:
    """(N, 3, 3) output → input of each image's tilt in pixel-centre coordinates: cv2's
    homography (pixel centres at integers) conjugated by the half-pixel shift."""
    shift = torch.eye(3, dtype=torch.float64)
    shift[:2, 2] = 0.5
    back = torch.eye(3, dtype=torch.float64)
    back[:2, 2] = -0.5
    inverses = {}
    for h, w in {tuple(r) for r in sizes.tolist()}:
        inverses[(h, w)] = shift @ torch.linalg.inv(tilt_matrix(degrees, w, h)) @ back
    return torch.stack([inverses[tuple(r)] for r in sizes.tolist()])


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


def make_sequence(
    images,
    perturbation: str,
    preset: SequencePreset,
    difficulty: int = 1,
    generator: torch.Generator | None = None,
    centre: str = "authors",
):
    """The frames of one perturbation for every image.

    Args:
        images: (N, C, H, W) in [0, 1], or a
            :class:`~defstab.data.stream.PaddedImages` of images of different sizes. With
            a crop (ImageNet-P) each image's short side must be the preset's source size
            and may have any aspect: as ``make_imagenet_p.py`` does, the whole image is
            perturbed and its centre cropped after, so rotations and scalings bring in
            content from outside the square.
        centre: where rotations and scalings turn (:data:`CENTRES`): "authors" (the 2018
            torchvision that made the published videos) or "modern".

    Returns:
        ``(frames (N, F, C, crop, crop), parameters (F,) the shift, angle, scale or noise
        level of each frame)``.
    """
    canvas, sizes = _layout(images)
    check_images(canvas)
    sizes = sizes.cpu()
    if perturbation not in PERTURBATIONS:
        raise ValueError(
            f"unknown perturbation {perturbation!r}; choose from {', '.join(PERTURBATIONS)}."
        )
    if difficulty not in (1, 2, 3):
        raise ValueError(f"difficulty must be 1, 2 or 3 (ImageNet-P's), got {difficulty!r}.")
    if centre not in CENTRES:
        raise ValueError(f"unknown centre {centre!r}; choose from {', '.join(CENTRES)}.")
    short = sizes.min(1).values
    if preset.source_size is not None and bool((short != preset.source_size).any()):
        raise ValueError(
            f"the {preset.name} preset moves images whose short side is {preset.source_size} "
            f"px; these have {int(short[short != preset.source_size][0])} px."
        )
    tops, lefts, height, width = _windows(sizes, preset.crop)
    if perturbation in NOISES:
        x = _crop(canvas, tops, lefts, height, width)
        return _noise_sequence(x, perturbation, preset, difficulty, generator)
    if perturbation == "translate":
        first, n = preset.translate
        shifts = [first + i for i in range(n)]
        frames = _crop(canvas, tops, lefts, height, width, torch.tensor(shifts), sizes)
        return frames, torch.tensor(shifts)
    first, step, n = getattr(preset, perturbation)
    values = [first + step * i for i in range(n)]
    frames = []
    for v in values:  # one warp per frame, every image at once
        if perturbation == "rotate":
            inverse = _affine_inverse(sizes, v, 1.0, centre)
        elif perturbation == "scale":
            inverse = _affine_inverse(sizes, 0.0, v, centre)
        else:
            inverse = _tilt_inverse(sizes, v)
        frames.append(_warped_crops(canvas, sizes, inverse, tops, lefts, height, width))
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
