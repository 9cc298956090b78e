"""One DATA string, parsed and validated once: what it is, where it lives, what it implies.

Every command and experiment turns its ``--data`` text into a :class:`DataSpec` at the
boundary and passes the spec down; nothing below parses the text again.

Forms: ``cifar10:PATH``, ``mnist:PATH``, ``folder:PATH``, ``PATH.pt`` / ``PATH.npy``
(a tensor file), ``synthetic`` or ``synthetic:C`` (the paper's deformation task of
strength C, default 2).

Example:
    >>> spec = DataSpec.parse("synthetic:3")
    >>> spec.kind, spec.strength, spec.native_size, spec.normalization
    ('synthetic', 3.0, 28, 'none')
    >>> DataSpec.parse("cifar10:/data/cifar").normalization
    'cifar10'
    >>> DataSpec.parse("pictures")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: cannot tell what data 'pictures' is: use folder:PATH, cifar10:PATH, ...
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

KINDS = ("cifar10", "mnist", "folder", "tensor", "synthetic")
TENSOR_SUFFIXES = (".pt", ".pth", ".npy")

#: Each kind's native image side (None: whatever the files hold).
NATIVE_SIZE = {"cifar10": 32, "mnist": 28, "synthetic": 28, "folder": None, "tensor": None}
#: Each kind's mean/std statistics for the paper's networks (see data/normalize.py).
NORMALIZATION = {"cifar10": "cifar10", "mnist": "mnist", "folder": "imagenet"}


@dataclass(frozen=True)
class DataSpec:
    """A parsed DATA string.

    Attributes:
        text: the string as given (what result files record and hash).
        kind: one of ``KINDS``.
        path: the folder or file (None for synthetic data).
        strength: synthetic tasks only, the deformation strength C.
    """

    text: str
    kind: str
    path: Path | None = None
    strength: float | None = None

    @classmethod
    def parse(cls, text: str | DataSpec) -> DataSpec:
        """Parse ``text`` (a spec passes through unchanged); one clear error if malformed."""
        if isinstance(text, DataSpec):
            return text
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"DATA must be a non-empty string, got {text!r}.")
        kind, sep, rest = text.partition(":")
        if kind == "synthetic":
            try:
                c = float(rest) if sep else 2.0
            except ValueError:
                raise ValueError(
                    f"synthetic data is 'synthetic:C' with a number C, got {text!r}."
                ) from None
            if not c > 0:
                raise ValueError(f"the synthetic task's strength C must be positive, got {c:g}.")
            return cls(text, "synthetic", None, c)
        if sep and kind in ("cifar10", "mnist", "folder"):
            if not rest:
                raise ValueError(f"{kind}: needs a path, e.g. {kind}:/data/{kind}.")
            return cls(text, kind, Path(rest))
        if text.endswith(TENSOR_SUFFIXES):
            return cls(text, "tensor", Path(text))
        raise ValueError(
            f"cannot tell what data {text!r} is: use folder:PATH, cifar10:PATH, mnist:PATH, "
            "synthetic[:C], or a .pt/.npy file."
        )

    def __str__(self) -> str:
        return self.text

    @property
    def native_size(self) -> int | None:
        return NATIVE_SIZE[self.kind]

    @property
    def normalization(self) -> str:
        """Statistics the paper's (registry) networks use on this data."""
        return NORMALIZATION.get(self.kind, "none")

    @property
    def augment(self) -> bool:
        """Random crop + flip suit natural images; flipped digits change class."""
        return self.kind in ("cifar10", "folder")

    @property
    def is_official_cifar(self) -> bool:
        """CIFAR-10 from the official pickled batches (not a JPEG re-encoding)."""
        p = self.path
        return self.kind == "cifar10" and (
            (p / "test_batch").is_file() or (p / "cifar-10-batches-py").is_dir()
        )

    def caveats(self, templates: str | None = None) -> list[str]:
        """What a report must say about this data."""
        out = []
        if self.kind == "cifar10" and not self.is_official_cifar:
            out.append(
                "CIFAR-10 read from JPEG re-encodings when given the ImageFolder layout: pixel "
                "values differ slightly from the official batches (same images and classes)."
            )
        if self.kind == "synthetic":
            out.append(
                "Synthetic task templates: "
                + (
                    "MNIST digits (test split)."
                    if templates
                    else "digits rendered from the DejaVu Sans font (built in), not the "
                    "paper's MNIST digits."
                )
            )
        if self.kind == "mnist":
            out.append("MNIST: only the 10,000-image test split is available here.")
        return out

    def record(self) -> dict:
        return {"text": self.text, "kind": self.kind} | (
            {"strength": self.strength} if self.strength is not None else {}
        )
