"""One contract for what a model returns: its class scores, whatever the container.

Research models return a tensor of logits, a tuple ``(logits, aux)`` (Inception, many
multi-head models), a dict (``{"logits": …, "feat": …}``) or an object with ``.logits``
(Hugging Face). Every command that needs class scores — P(top-1 change), the loss of a
worst-case search, training — reads them through :func:`class_scores`:

- a tensor is the scores;
- a tuple or list (a namedtuple too): its first element;
- a dict (any mapping): its ``"logits"`` entry, else its one tensor of shape (N, classes),
  else an error asking for a key;
- an object with a tensor ``.logits``: that;
- ``key`` (``--output-key``) names the entry, index or attribute instead.

The scores must be (N, classes): any other shape is refused rather than argmax'ed along a
wrong axis.

Example:
    >>> import torch
    >>> out = {"feat": torch.zeros(2, 8, 4, 4), "logits": torch.zeros(2, 10)}
    >>> output_contract(out).description
    "the 'logits' entry of a dict"
    >>> tuple(class_scores((torch.ones(2, 5), torch.zeros(2, 3))).shape)
    (2, 5)
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping

import torch
from torch import nn


@dataclasses.dataclass(frozen=True)
class OutputContract:
    """Where the class scores sit in a model's output.

    Attributes:
        kind: ``"tensor"``, ``"sequence"``, ``"mapping"`` or ``"attribute"``.
        key: the index (sequence), entry (mapping) or attribute name; None for a tensor.
        container: the output's type name (``"tuple"``, ``"dict"``, ``"InceptionOutputs"``).
        classes: how many class scores (None until an output was read, see
            :func:`return_class_scores`).
    """

    kind: str
    key: str | int | None = None
    container: str = "Tensor"
    classes: int | None = None

    @property
    def description(self) -> str:
        if self.kind == "tensor":
            return "the output tensor"
        if self.kind == "sequence":
            return f"element {self.key} of a {self.container}"
        if self.kind == "mapping":
            return f"the {self.key!r} entry of a {self.container}"
        return f"the .{self.key} attribute of a {self.container}"

    def record(self) -> dict:
        """For ``config.json``."""
        return {"kind": self.kind, "key": self.key, "container": self.container,
                "classes": self.classes, "class_scores": self.description}  # fmt: skip

    def scores(self, output) -> torch.Tensor:
        """The (N, classes) class scores of ``output`` (a same-shaped output each call)."""
        return _checked(self.tensor(output), self.description)

    def tensor(self, output):
        """The element the contract names, whatever its shape (a representation)."""
        if self.kind == "tensor":
            return output
        if self.kind in ("sequence", "mapping"):
            return output[self.key]
        return getattr(output, self.key)


def _checked(value, where: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{where} is a {type(value).__name__}, not a tensor of class scores.")
    if value.ndim != 2:
        raise ValueError(
            f"{where} has shape {tuple(value.shape)}; class scores must be (N, classes) — "
            "give a classifier, or name its scores with --output-key KEY."
        )
    return value


def output_contract(output, key: str | int | None = None) -> OutputContract:
    """The :class:`OutputContract` of one output (see the module docstring); one sentence
    when the scores cannot be found."""
    container = type(output).__name__
    if key is not None:
        return _keyed(output, key, container)
    if isinstance(output, torch.Tensor):
        return OutputContract("tensor")
    if isinstance(output, Mapping):
        if "logits" in output:
            return OutputContract("mapping", "logits", container)
        scores = [k for k, v in output.items() if isinstance(v, torch.Tensor) and v.ndim == 2]
        if len(scores) == 1:
            return OutputContract("mapping", scores[0], container)
        raise ValueError(
            f"the model returns a {container} with keys {list(output)} and no 'logits' entry; "
            "name its class scores with --output-key KEY."
        )
    if isinstance(output, tuple | list):
        if output and isinstance(output[0], torch.Tensor):
            return OutputContract("sequence", 0, container)
        raise ValueError(
            f"the model returns a {container} whose first element is not a tensor; "
            "name its class scores with --output-key INDEX."
        )
    if isinstance(getattr(output, "logits", None), torch.Tensor):
        return OutputContract("attribute", "logits", container)
    raise ValueError(
        f"the model returns a {container}, which holds no class scores defstab can find; "
        "name them with --output-key KEY."
    )


def _keyed(output, key, container: str) -> OutputContract:
    if isinstance(output, Mapping):
        if key not in output:
            raise ValueError(
                f"--output-key {key!r} is not an entry of the model's {container}; "
                f"its keys: {list(output)}."
            )
        return OutputContract("mapping", key, container)
    if isinstance(output, tuple | list):
        try:
            index = int(key)
            output[index]
        except (ValueError, IndexError):
            raise ValueError(
                f"--output-key {key!r} is not an index of the model's {container} of "
                f"{len(output)} elements."
            ) from None
        return OutputContract("sequence", index, container)
    if isinstance(output, torch.Tensor):
        raise ValueError("the model returns a plain tensor; drop --output-key.")
    if not hasattr(output, str(key)):
        raise ValueError(f"--output-key {key!r} is not an attribute of the model's {container}.")
    return OutputContract("attribute", str(key), container)


def output_tensor(output, key: str | int | None = None) -> torch.Tensor:
    """The tensor the contract names in a model's output, of any shape (the model's output
    as a representation, e.g. for a distance)."""
    value = output_contract(output, key).tensor(output)
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"the model's output holds a {type(value).__name__}, not a tensor.")
    return value


def class_scores(output, key: str | int | None = None) -> torch.Tensor:
    """The (N, classes) class scores of a model's output, by the module's contract."""
    return output_contract(output, key).scores(output)


def check_finite_scores(scores: torch.Tensor, model_name: str) -> None:
    """One sentence naming the model and the first image (its row in the batch) when any
    class score is NaN or infinite: a top-1 class, a flip or an accuracy computed from
    them would look complete and mean nothing."""
    bad = ~torch.isfinite(scores.detach()).all(dim=1)
    if bool(bad.any()):
        row = int(bad.nonzero()[0])
        what = "NaN" if bool(torch.isnan(scores[row]).any()) else "infinite"
        raise ValueError(
            f"the model {model_name} gives {what} class scores for image {row} of a batch of "
            f"{scores.shape[0]} ({int(bad.sum())} of the batch are non-finite); check its "
            "weights and its input normalisation."
        )


def return_class_scores(
    model: nn.Module,
    probe: torch.Tensor,
    key: str | int | None = None,
    model_name: str | None = None,
) -> OutputContract:
    """Make ``model(x)`` return its class scores (N, classes), whatever it returned before.

    Runs ``probe`` (a small batch of the inputs to come) once in eval mode to find the
    contract; when the output is not a plain tensor, a forward hook on the model itself
    replaces each output by its scores (the layers inside are untouched, so their names and
    hooks stay valid). Returns the contract (recorded by the CLI in ``config.json``).

    With ``model_name`` every output's scores are also checked to be finite
    (:func:`check_finite_scores`), on the probe and on each later call.
    """
    from defstab.tap import evaluation_mode, run_checked

    with evaluation_mode(model), torch.no_grad():
        output = run_checked(model, probe)
    contract = output_contract(output, key)
    # the shape check, now, before any work
    contract = dataclasses.replace(contract, classes=contract.scores(output).shape[1])
    if model_name is not None:
        check_finite_scores(contract.scores(output), model_name)

    def scores_only(module, inputs, out):
        scores = contract.scores(out)
        if model_name is not None:
            check_finite_scores(scores, model_name)
        return scores if contract.kind != "tensor" else None

    if contract.kind != "tensor" or model_name is not None:
        model.register_forward_hook(scores_only)
    return contract


def state_contract(contract: OutputContract) -> None:
    """Say once on stderr where the scores come from, when the output is not a tensor."""
    if contract.kind != "tensor":
        print(f"defstab: class scores are {contract.description}.", file=sys.stderr)
