"""The request of the perturbation-sequence protocol (``defstab perturb``): ImageNet-P's
flip probability, top-5 distance and flip rate over sequences made on the fly
(Hendrycks & Dietterich 2019)."""

from __future__ import annotations

from dataclasses import dataclass

from defstab.requests.fields import option
from defstab.requests.model import read_workers_option

PERTURBATIONS = ("translate", "rotate", "tilt", "scale", "gaussian_noise", "shot_noise")
BASELINE = "the baseline (the flip rate's denominator)"


@dataclass
class PerturbRequest:
    """What ``defstab perturb`` measures (every field is one of its options)."""

    images: int = option(32, help="videos: one per image")
    read_workers: int = read_workers_option()
    preset: str = option(
        "imagenet-p",
        choices=("imagenet-p", "cifar-p"),
        help="the generation parameters of make_imagenet_p.py (images resized to 256 px, "
        "perturbed, centre-cropped to 224; 41 translate frames of 1 px, 31 of 1° rotation and "
        "tilt, scale 0.40…1.15) or make_cifar_p.py (32 px, 16 translate frames, tilt 0.75° "
        "steps, scale 0.70…1.30)",
    )
    perturbations: str = option(
        ",".join(PERTURBATIONS),
        help=f"comma-separated: {', '.join(PERTURBATIONS)} (default: all)",
    )
    difficulty: int = option(
        1,
        help="1, 2 or 3: frames compared d apart (geometric) or the noise level (noise), as "
        "test.py's -d",
    )
    centre: str = option(
        "authors",
        choices=("authors", "modern"),
        help="where rotate and scale turn: authors (default; (w/2 + ½, h/2 + ½), as the 2018 "
        "torchvision that made the published ImageNet-P videos: compare with their numbers) "
        "or modern (today's torchvision, (w/2, h/2))",
    )
    baseline_model: str | None = option(
        group=BASELINE,
        help="a second network measured on the same sequences: FR = FP / its FP (the paper "
        "uses AlexNet: torchvision:alexnet --baseline-pretrained)",
    )
    baseline_checkpoint: str | None = option(group=BASELINE, help="weights of the baseline")
    baseline_width: float | None = option(
        group=BASELINE, help="registry baseline: channel multiplier (as --width)"
    )
    baseline_run: str | None = option(
        metavar="DIR", group=BASELINE, help="the baseline from a 'defstab train' folder"
    )
    baseline_pretrained: bool = option(
        False, group=BASELINE, help="the baseline's published weights (needs the internet)"
    )
    seed: int = option(0, help="images drawn and noise")

    def perturbation_list(self) -> list[str]:
        """The perturbations asked for, in order, each once; one sentence for an unknown."""
        names = [t.strip() for t in self.perturbations.split(",") if t.strip()]
        bad = [n for n in names if n not in PERTURBATIONS]
        if bad or not names:
            raise ValueError(
                f"unknown perturbation {', '.join(bad) or repr(self.perturbations)}; choose "
                f"from {', '.join(PERTURBATIONS)}."
            )
        return list(dict.fromkeys(names))

    def baseline(self):
        """The baseline's :class:`~defstab.requests.model.ModelOptions`, or None."""
        from defstab.requests.model import ModelOptions

        if self.baseline_model and self.baseline_run:
            raise ValueError("give --baseline-model or --baseline-run, not both.")
        if not (self.baseline_model or self.baseline_run):
            if self.baseline_checkpoint or self.baseline_pretrained or self.baseline_width:
                raise ValueError(
                    "--baseline-checkpoint, --baseline-width and --baseline-pretrained need "
                    "--baseline-model."
                )
            return None
        return ModelOptions(
            model=self.baseline_model,
            run=self.baseline_run,
            checkpoint=self.baseline_checkpoint,
            width=self.baseline_width,
            pretrained=self.baseline_pretrained,
            pretrained_option="--baseline-pretrained",  # named if the download fails
        )
