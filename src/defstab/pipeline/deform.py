"""A deformation figure end to end: the function behind ``defstab deform`` and
:func:`defstab.run` with a :class:`~defstab.requests.deform.DeformRequest` (``out``: the
figure, PNG, SVG or PDF)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from defstab.requests.deform import DeformRequest


@dataclass
class DeformOutcome:
    """The figure written, and the request that drew it (its kind as the replay said)."""

    request: DeformRequest
    out: Path

    def summary_lines(self) -> list[str]:
        return [f"wrote {self.out}"]


def run_deform(request: DeformRequest, *, model=None, data=None, out="deformations.png",
               warn=None, given=None, progress: bool = True):  # fmt: skip
    """Draw ``request.images`` (or ``data``: image files) deformed as ``request`` says,
    into the figure ``out``. Returns a :class:`DeformOutcome`."""
    from dataclasses import replace

    from defstab.pipeline.checks import check_options

    if model is not None:
        raise ValueError("deform draws images, not a model's representations; give no model.")
    if data is not None:
        request = replace(request, images=tuple(str(p) for p in data))
    if not request.images:
        raise ValueError("give the images to deform (image files, PNG, JPEG, ...).")
    given = check_options("deform", request, None, None, given)

    def say(message: str) -> None:
        print(f"defstab: {message}", file=sys.stderr)

    return _deform(request, out if out is not None else "deformations.png", given, say)


def _deform(request, out, given, say):
    import math
    from dataclasses import replace

    import torch

    from defstab.deform import apply_tps, get_tps, random_tps
    from defstab.io.images import read_image
    from defstab.plotting.common import check_figure_path
    from defstab.plotting.deformation import deformation_figure

    out = check_figure_path(out)
    replay = None
    if request.displacements:
        from defstab.io.replay import read_replay

        replay = read_replay(request.displacements, "--displacements")
    size = request.size or None
    recorded = _recorded_side(request, replay)
    if recorded and recorded != size and "size" not in given:
        size = recorded  # the size the file was made for, unless --size says otherwise
        made = request.displacements or request.transforms
        say(f"images read at {size} px, the size {made} was made for.")
    images = [read_image(path, size) for path in request.images]
    shapes = {tuple(im.shape) for im in images}
    if len(shapes) > 1:
        raise ValueError(f"images differ in size {sorted(shapes)}; pass --size to crop them alike.")
    batch = torch.stack(images)
    names = [str(p).rsplit("/", 1)[-1] for p in request.images]
    if replay is not None:
        request = replace(request, kind=_replay_kind(request, replay, tuple(batch.shape[-2:]),
                                                     "kind" in given))  # fmt: skip
    if request.kind != "tps":
        _draw_fields(request, batch, names, out, replay)
        return DeformOutcome(request, out)
    grid = request.grid
    if request.displacements:
        disp = replay.params
        grid = math.isqrt(disp.shape[1]) if isinstance(disp, torch.Tensor) and disp.ndim == 3 else 0
        if grid < 2 or disp.shape != (len(images), grid * grid, 2):
            raise ValueError(
                f"--displacements {request.displacements} must hold one (k·k, 2) row per image "
                f"({len(images)} images), got {tuple(getattr(disp, 'shape', ()))}."
            )
        disp = disp.float()
        deformed = apply_tps(batch, disp, grid, padding=request.padding)
    else:
        gen = torch.Generator().manual_seed(request.seed)
        deformed, disp = random_tps(batch, grid, request.max_disp, gen, padding=request.padding)
    tps = get_tps(tuple(batch.shape[-2:]), grid)
    deformation_figure(batch, disp, deformed, tps, out, names=names)
    return DeformOutcome(request, out)


def _draw_fields(request, batch, names, out, replay) -> None:
    """A diffeomorphism or a rotation + translation per image: original, field, deformed."""
    import torch

    from defstab.deform.warp import warp
    from defstab.plotting.deformation import field_figure

    n, size = batch.shape[0], tuple(batch.shape[-2:])
    gen = torch.Generator().manual_seed(request.seed)
    captions = None
    if request.kind == "diffeo":
        from defstab.deform import DeformationSpec
        from defstab.deform.diffeo import diffeo_field

        if replay is not None:
            spec = DeformationSpec.from_record(replay.record["deformation"])
            coefficients = replay.params
            if coefficients.ndim != 4 or coefficients.shape[0] != n:
                raise ValueError(
                    f"--displacements {request.displacements} holds {coefficients.shape[0]} "
                    f"diffeomorphisms; give {coefficients.shape[0]} images, in order."
                )
        else:
            displacement = request.displacement
            if request.temperature is None and displacement is None:
                displacement = 1.0
            spec = DeformationSpec.diffeo(size, request.cut, request.temperature, displacement)
            coefficients = spec.sample(n, gen)
        fields = diffeo_field(coefficients, size, spec.temperature)
        title = f"diffeomorphism (T = {spec.temperature:.3g}, c = {spec.cut})"
        deformed = warp(batch, fields.float(), padding=spec.padding)
    else:
        from defstab.translate.spatial import (
            apply_transforms,
            get_spatial_preset,
            random_transforms,
            transform_fields,
        )

        if size[0] != size[1]:
            raise ValueError("spatial transforms take square images; pass --size.")
        preset = get_spatial_preset(
            request.spatial_preset or ("engstrom-cifar" if size[0] <= 64 else "engstrom-imagenet")
        )
        if request.transforms:
            recorded = _spatial_settings(request.transforms, size[0])
            if recorded is not None and not request.spatial_preset:
                preset = get_spatial_preset(recorded)  # the preset the worst ones were found in
            transforms = _read_transforms(request.transforms, n)
        else:
            transforms = random_transforms(n, 1, preset, size[0], gen)[:, 0]
        fields = transform_fields(transforms, preset, size[0])
        deformed = apply_transforms(batch, transforms[:, None], preset)[:, 0]
        captions = [f"{a:+.1f}°, ({x:+.1f}, {y:+.1f}) px" for a, x, y in transforms.tolist()]
        title = f"rotation + translation ({preset.name})"
    field_figure(batch, fields, deformed, out, title, names=names, captions=captions)


def _recorded_side(request, replay) -> int | None:
    """The square image side a --displacements file or a --transforms CSV (its
    config.json) was made for, if it says so."""
    if replay is not None:
        drawn = (replay.record or {}).get("image_size")
        return int(drawn[0]) if drawn and len(set(drawn)) == 1 else None
    if request.transforms:
        side = _spatial_config(request.transforms).get("image_size")
        return int(side) if isinstance(side, int) else None
    return None


def _spatial_config(path) -> dict:
    """The config.json beside spatial's per_image.csv ``path`` ({} when there is none: a
    CSV on its own, whose size cannot be checked and whose preset goes by image size)."""
    import json
    from pathlib import Path

    try:
        record = json.loads((Path(path).parent / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _replay_kind(request, replay, size: tuple[int, int], kind_given: bool) -> str:
    """The kind of deformation the --displacements file holds (TPS or diffeo), checked
    against a --kind the user wrote and against the images' size it was drawn for."""
    record = replay.record or {}
    kind = (record.get("deformation") or {}).get("kind")
    saved = "diffeo" if kind == "diffeo" else "tps"  # a TPS records "random_tps"
    if kind_given and request.kind != saved:
        raise ValueError(
            f"--displacements {request.displacements} holds {saved} deformations, not "
            f"{request.kind}; drop --kind (the file says what it holds) or give a "
            f"{request.kind} file."
        )
    drawn = record.get("image_size")
    if drawn is not None and tuple(drawn) != size:
        h, w = drawn
        raise ValueError(
            f"--displacements {request.displacements} was drawn for {w}×{h}-px images and these "
            f"are {size[1]}×{size[0]} px; pass --size {w} (or images of that size)."
        )
    return saved


def _spatial_settings(path, side: int) -> str | None:
    """The spatial preset recorded in the config.json beside ``path`` (spatial's
    per_image.csv); one sentence when it was made for images of another size."""
    record = _spatial_config(path)
    drawn = record.get("image_size")
    if drawn is not None and int(drawn) != side:
        raise ValueError(
            f"--transforms {path} holds the worst transforms of {drawn}-px images (its "
            f"config.json says so) and these are {side} px; pass --size {drawn}."
        )
    preset = record.get("preset") or {}
    return preset.get("name") if isinstance(preset, dict) else None


def _read_transforms(path, n: int):
    """(n, 3) angle, dx, dy from the worst_* columns of spatial's per_image.csv."""
    import torch

    from defstab.io.tables import read_csv

    try:
        rows = read_csv(path)
        values = [[float(r[k]) for k in ("worst_angle", "worst_dx", "worst_dy")] for r in rows]
    except FileNotFoundError:
        raise ValueError(f"--transforms {path} does not exist.") from None
    except (KeyError, ValueError, TypeError):
        raise ValueError(
            f"--transforms {path} is not the per_image.csv of 'defstab spatial' (it needs "
            "worst_angle, worst_dx and worst_dy columns)."
        ) from None
    if len(values) != n:
        raise ValueError(
            f"--transforms {path} holds {len(values)} transforms; give {len(values)} images, "
            "in order."
        )
    return torch.tensor(values, dtype=torch.float64)
