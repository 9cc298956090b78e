"""``nn.Module`` wrappers over the deformation functions, in the style of kornia's
augmentation modules: sampling and applying are separate steps, and the parameters of
the last call are kept so that the same deformations can be replayed on other images
(the undeformed twin of a batch, another model's input, a saved run).

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> tps = RandomThinPlateSpline(grid=3, max_disp=2.0)
    >>> x = torch.rand(4, 3, 32, 32)
    >>> y = tps(x, generator=g)                      # samples, applies, keeps the params
    >>> params = tps.last_params                     # {"displacements": (4, 9, 2)}
    >>> torch.equal(tps(x, params=params), y)        # replay: same deformations
    True
    >>> p = tps.forward_parameters(x.shape, generator=g)   # sample only
    >>> tuple(p["displacements"].shape)
    (4, 9, 2)
    >>> from defstab.deform import translation_field
    >>> shift = Warp()(x, translation_field((32, 32), dx=1))  # content one pixel right
    >>> torch.allclose(shift[..., 1:], x[..., :-1], atol=1e-5)
    True
"""

from __future__ import annotations

import torch
from torch import nn

from defstab.deform.spec import DeformationSpec
from defstab.deform.warp import check_padding, warp

__all__ = ["RandomThinPlateSpline", "Warp"]


class RandomThinPlateSpline(nn.Module):
    """One random TPS deformation per image: (N, C, H, W) → (N, C, H, W).

    Args:
        grid: control points per side, k.
        max_disp: C, displacement coordinates uniform in [−C, C] pixels.
        padding: value outside the image (``"zeros"``, ``"border"``, ``"reflection"``).

    Attributes:
        spec: the :class:`DeformationSpec` (what result files record).
        last_params: ``{"displacements": (N, k·k, 2)}`` of the last call, for replay.
    """

    def __init__(self, grid: int = 3, max_disp: float = 2.0, padding: str = "zeros") -> None:
        super().__init__()
        self.spec = DeformationSpec(grid, max_disp, padding)
        self.last_params: dict[str, torch.Tensor] | None = None

    @classmethod
    def from_spec(cls, spec: DeformationSpec) -> RandomThinPlateSpline:
        return cls(spec.grid, spec.max_disp, spec.padding)

    def forward_parameters(
        self, batch_shape: torch.Size | tuple, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Sample the parameters for a batch of ``batch_shape`` (only N is used)."""
        return {"displacements": self.spec.sample(int(batch_shape[0]), generator)}

    def forward(
        self,
        images: torch.Tensor,
        params: dict[str, torch.Tensor] | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Deform ``images`` with ``params`` (replay) or with freshly sampled ones."""
        if params is None:
            params = self.forward_parameters(images.shape, generator)
        self.last_params = params
        return self.spec.apply(images, params["displacements"])

    def extra_repr(self) -> str:
        s = self.spec
        return f"grid={s.grid}, max_disp={s.max_disp:g}, padding={s.padding!r}"


class Warp(nn.Module):
    """Resample images along a field (N|1, H, W, 2) mapping output → input pixels."""

    def __init__(self, padding: str = "zeros") -> None:
        super().__init__()
        check_padding(padding)
        self.padding = padding

    def forward(self, images: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
        return warp(images, field, self.padding)

    def extra_repr(self) -> str:
        return f"padding={self.padding!r}"
