"""Deformations of images: thin-plate splines, global transforms, warping.

Convention (one for the whole package):

* **Pixel frame.** Coordinates are in pixels; pixel (x, y) is the centre of column x,
  row y; x = 0 … W − 1 runs left to right and y = 0 … H − 1 top to bottom.
* **Order.** Every coordinate or displacement pair is (x, y); tensors of fields have
  shape (N, H, W, 2) with ``field[n, y, x] = (u_x, u_y)``.
* **Direction.** Fields map *output → input*: output pixel p takes the input value at
  p + u(p), read bilinearly. Functions describing a global motion of the content
  (``translation_field`` and friends) take the content's motion as arguments and
  return the corresponding output → input field.
* **align_corners.** Pixel centres map to grid_sample's [-1, 1] with
  ``align_corners=True``: x = 0 ↦ −1 and x = W − 1 ↦ +1, so the TPS control points on
  the border pixels sit exactly on the grid's edge.
* **Outside the image** the value is 0 by default (``padding="zeros"``), or the
  nearest edge pixel (``"border"``), or the mirror image (``"reflection"``).
"""

from defstab.deform.fields import (
    affine_field,
    rotation_field,
    scaling_field,
    shear_field,
    translation_field,
)
from defstab.deform.modules import RandomThinPlateSpline, Warp
from defstab.deform.sampling import apply_tps, get_tps, random_tps, sample_displacements
from defstab.deform.spec import DeformationSpec
from defstab.deform.tps import ThinPlateSpline
from defstab.deform.warp import warp

__all__ = [
    "DeformationSpec",
    "RandomThinPlateSpline",
    "ThinPlateSpline",
    "Warp",
    "affine_field",
    "apply_tps",
    "get_tps",
    "random_tps",
    "rotation_field",
    "sample_displacements",
    "scaling_field",
    "shear_field",
    "translation_field",
    "warp",
]
