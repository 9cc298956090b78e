"""Bounding boxes from real annotation formats, and how biased their placement is.

Azulay & Weiss argue that photographers bias data sets: objects sit near the centre and
at a typical size, so a network never has to become invariant. This module reads the boxes
of a data set and summarises where they are and how large:

* **Pascal VOC and ImageNet (ILSVRC) XML**: one file per image, ``<size><width>``,
  ``<height>`` and ``<object><name>``, ``<bndbox><xmin>…<ymax>``. Coordinates are VOC's
  1-based inclusive pixel indices, so a box covers [xmin − 1, xmax] in continuous
  coordinates (ILSVRC's files use the same schema; a half-pixel convention difference
  changes the normalised values by < 1/(2·width)).
* **COCO instances JSON**: ``images`` (id, width, height), ``annotations`` (image_id,
  bbox = [x, y, w, h] in continuous pixel coordinates, category_id), ``categories``.

Every box becomes its centre (x, y) as a fraction of the image's width and height, and its
size: box area / image area. :func:`uniform_placement` keeps every box's image and size and
draws its position uniformly among the positions that keep it inside the image — the data
set a photographer without a bias would have taken, for contrast.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Boxes:
    """N boxes in continuous pixel coordinates of their images.

    Attributes:
        x0, y0, x1, y1: (N,) box edges, 0 ≤ x0 < x1 ≤ width (likewise y).
        width, height: (N,) size of each box's image in pixels.
        labels: (N,) class names.
        images: (N,) image identifiers (file stem or COCO image id).
        source: what was read, for tables and titles.
    """

    x0: np.ndarray
    y0: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    width: np.ndarray
    height: np.ndarray
    labels: np.ndarray
    images: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.x0)

    @property
    def centres(self) -> np.ndarray:
        """(N, 2) centre (x, y) as fractions of the image width and height, in [0, 1]."""
        return np.stack(
            [(self.x0 + self.x1) / 2 / self.width, (self.y0 + self.y1) / 2 / self.height], 1
        )

    @property
    def sizes(self) -> np.ndarray:
        """(N,) box area / image area, in (0, 1]."""
        return (self.x1 - self.x0) * (self.y1 - self.y0) / (self.width * self.height)

    def rows(self) -> list[dict]:
        """One tidy row per box."""
        c, s = self.centres, self.sizes
        return [
            {
                "image": str(self.images[i]),
                "label": str(self.labels[i]),
                "centre_x": float(c[i, 0]),
                "centre_y": float(c[i, 1]),
                "size": float(s[i]),
                "box": f"{self.x0[i]:g},{self.y0[i]:g},{self.x1[i]:g},{self.y1[i]:g}",
                "image_size": f"{self.width[i]:g}x{self.height[i]:g}",
            }
            for i in range(len(self))
        ]


def _boxes(records: list[tuple], source: str) -> Boxes:
    """Boxes from (image, label, x0, y0, x1, y1, width, height) records; each box clipped
    to its image. Raises on none left: a data set without boxes has no statistics."""
    if not records:
        raise ValueError(f"{source} holds no bounding boxes.")
    images, labels, *numbers = zip(*records, strict=True)
    x0, y0, x1, y1, w, h = (np.asarray(v, dtype=np.float64) for v in numbers)
    if (w <= 0).any() or (h <= 0).any():
        raise ValueError(f"{source}: an image has a non-positive width or height.")
    x0, x1 = np.clip(x0, 0, w), np.clip(x1, 0, w)
    y0, y1 = np.clip(y0, 0, h), np.clip(y1, 0, h)
    return Boxes(x0, y0, x1, y1, w, h, np.asarray(labels), np.asarray(images), source)


def degenerate(boxes: Boxes) -> np.ndarray:
    """(N,) bool: boxes of zero area (after clipping), which have no size to measure."""
    return (boxes.x1 <= boxes.x0) | (boxes.y1 <= boxes.y0)


def subset(boxes: Boxes, keep: np.ndarray) -> Boxes:
    return replace(
        boxes,
        **{
            k: getattr(boxes, k)[keep]
            for k in ("x0", "y0", "x1", "y1", "width", "height", "labels", "images")
        },
    )


def _number(node, tag: str, file: Path) -> float:
    found = node.find(tag)
    try:
        return float(found.text)
    except (AttributeError, TypeError, ValueError):
        raise ValueError(f"{file}: <{tag}> is missing or not a number.") from None


def read_voc(folder: str | Path) -> Boxes:
    """Every ``*.xml`` annotation under ``folder`` (Pascal VOC / ILSVRC schema)."""
    folder = Path(folder)
    files = sorted(folder.rglob("*.xml")) if folder.is_dir() else [folder]
    if not files or not files[0].is_file():
        raise ValueError(f"no .xml annotation files under {folder}.")
    records = []
    for file in files:
        try:
            root = ET.parse(file).getroot()
        except ET.ParseError as e:
            raise ValueError(f"{file} is not readable XML ({e}).") from None
        size = root.find("size")
        if size is None:
            raise ValueError(f"{file} has no <size>: not a VOC/ILSVRC annotation.")
        w, h = _number(size, "width", file), _number(size, "height", file)
        for obj in root.iter("object"):
            box = obj.find("bndbox")
            if box is None:
                continue  # an object without a box (ILSVRC lists some)
            xmin, ymin, xmax, ymax = (
                _number(box, t, file) for t in ("xmin", "ymin", "xmax", "ymax")
            )
            name = obj.findtext("name", default="?")
            # 1-based inclusive pixel indices → continuous [xmin − 1, xmax]
            records.append((file.stem, name, xmin - 1, ymin - 1, xmax, ymax, w, h))
    return _boxes(records, str(folder))


def read_coco(path: str | Path) -> Boxes:
    """A COCO instances file. Crowd annotations (``iscrowd`` = 1) are left out: their box
    covers a group of objects, not one object's position and size."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path} does not exist.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not readable JSON ({e}).") from None
    if not isinstance(data, dict) or "annotations" not in data or "images" not in data:
        raise ValueError(f"{path} is not a COCO instances file (no 'images'/'annotations').")
    try:
        sizes = {im["id"]: (float(im["width"]), float(im["height"])) for im in data["images"]}
        names = {c["id"]: c["name"] for c in data.get("categories", [])}
        records = []
        for a in data["annotations"]:
            if a.get("iscrowd", 0):
                continue
            x, y, bw, bh = (float(v) for v in a["bbox"])
            w, h = sizes[a["image_id"]]
            label = names.get(a.get("category_id"), str(a.get("category_id", "?")))
            records.append((str(a["image_id"]), label, x, y, x + bw, y + bh, w, h))
    except KeyError as e:
        raise ValueError(
            f"{path}: an entry lacks {e} (or names an image that is not listed)."
        ) from None
    except (TypeError, ValueError):
        raise ValueError(f"{path}: a bbox or image size is not four / two numbers.") from None
    return _boxes(records, str(path))


def read_boxes(spec: str) -> Boxes:
    """``voc:PATH`` / ``ilsvrc:PATH`` (XML files) or ``coco:FILE.json``; without a prefix,
    a ``.json`` file is COCO and anything else VOC XML."""
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in ("voc", "ilsvrc", "coco"):
        kind, path = prefix, rest
    else:
        kind, path = ("coco" if spec.endswith(".json") else "voc"), spec
    if not Path(path).exists():
        raise ValueError(f"{path} does not exist.")
    return read_coco(path) if kind == "coco" else read_voc(path)


def uniform_placement(boxes: Boxes, seed: int = 0) -> Boxes:
    """Every box kept at its size in its image, moved to a position drawn uniformly among
    those that keep it inside the image (x0 ~ U[0, width − box width], likewise y)."""
    rng = np.random.default_rng(seed)
    bw, bh = boxes.x1 - boxes.x0, boxes.y1 - boxes.y0
    x0 = rng.uniform(0, 1, len(boxes)) * (boxes.width - bw)
    y0 = rng.uniform(0, 1, len(boxes)) * (boxes.height - bh)
    return replace(boxes, x0=x0, y0=y0, x1=x0 + bw, y1=y0 + bh, source="uniform placement")


#: the central square with half the image's side: 1/4 of its area
CENTRAL = (0.25, 0.75)


def statistics(boxes: Boxes) -> dict[str, float]:
    """Summary of where boxes are and how large: counts; mean, std (ddof = 0) and the
    10/50/90% quantiles of centre x, centre y and size; the mean distance of the centre
    from the image centre (in image fractions); the fraction of centres inside the
    central square of half the image's side (1/4 of the area)."""
    c, s = boxes.centres, boxes.sizes
    out: dict[str, float] = {"boxes": len(boxes), "images": len(set(boxes.images.tolist()))}
    for name, v in (("centre_x", c[:, 0]), ("centre_y", c[:, 1]), ("size", s)):
        q10, q50, q90 = np.quantile(v, [0.1, 0.5, 0.9])
        out |= {
            f"{name}_mean": float(v.mean()),
            f"{name}_std": float(v.std()),
            f"{name}_q10": float(q10),
            f"{name}_median": float(q50),
            f"{name}_q90": float(q90),
        }
    out["centre_distance_mean"] = float(np.hypot(c[:, 0] - 0.5, c[:, 1] - 0.5).mean())
    lo, hi = CENTRAL
    inside = ((c >= lo) & (c <= hi)).all(1)
    out["central_quarter_fraction"] = float(inside.mean())
    return out


def centre_histogram(boxes: Boxes, bins: int) -> np.ndarray:
    """(bins, bins) fraction of box centres per cell, rows = y (top first), cols = x."""
    c = boxes.centres
    h, _, _ = np.histogram2d(c[:, 1], c[:, 0], bins=bins, range=[[0, 1], [0, 1]])
    return h / len(boxes)
