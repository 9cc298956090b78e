"""The training loop: deterministic on CPU, resumable, with a history of stability.

Determinism: the data order of epoch e is a permutation seeded by (seed, e), and the
augmentation of step s draws from a generator seeded by (seed, s). A checkpoint then
needs only the model, the optimizer state and the step to continue exactly as an
uninterrupted run would.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from defstab.data.augment import random_crop_flip
from defstab.data.sources import ImageDataset
from defstab.deform import DeformationSpec
from defstab.io.atomic import write_json
from defstab.io.checkpoint import model_state, read_checkpoint, save_checkpoint
from defstab.io.tables import read_csv, write_csv
from defstab.metrics import filter_smoothness
from defstab.models.outputs import class_scores
from defstab.tap import evaluation_mode, pick_device
from defstab.train.config import TrainConfig, checkpoint_steps
from defstab.train.precision import autocast

CKPT_DIR = "checkpoints"


@dataclass
class TrainResult:
    model: nn.Module
    history: list[dict]
    out: Path | None
    steps: int
    seconds: float  # wall time of this call
    step_seconds: float  # time in training steps alone (no evaluation or checkpoints)


def _seeded(seed: int, *salt: int) -> torch.Generator:
    h = seed
    for s in salt:
        h = (h * 1_000_003 + s) % (2**63 - 1)
    return torch.Generator().manual_seed(h)


def _lr_at(cfg: TrainConfig, step: int, total: int) -> float:
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * step / total))
    return cfg.lr * (0.1 ** ((step >= 0.5 * total) + (step >= 0.75 * total)))


@torch.no_grad()
def evaluate(
    model: nn.Module, data: ImageDataset, preprocess=None, batch_size: int = 500, device=None
) -> float:
    """Top-1 accuracy of ``model`` (eval mode, mode restored) on ``data``, in fp32.

    Batches are laid out as the model's convolution weights are (channels-last during
    training), so the evaluations at checkpoints run at the training layout's speed."""
    device = device or next(model.parameters()).device
    layout = _memory_format(model)
    correct = 0
    with evaluation_mode(model):
        for s in range(0, len(data), batch_size):
            idx = torch.arange(s, min(s + batch_size, len(data)))
            x = data.images(idx).to(device)
            if preprocess is not None:
                x = preprocess(x)
            if x.dim() == 4:
                x = x.contiguous(memory_format=layout)
            correct += int((class_scores(model(x)).argmax(1).cpu() == data.labels[idx]).sum())
    return correct / len(data)


def _memory_format(model: nn.Module) -> torch.memory_format:
    """channels_last if the model's first 4-d weight is stored so, else contiguous."""
    for p in model.parameters():
        if p.dim() == 4:
            if p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous():
                return torch.channels_last
            break
    return torch.contiguous_format


def _optimizer_state_tensors(opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    out = {}
    for i, state in opt.state_dict()["state"].items():
        for k, v in state.items():
            if isinstance(v, torch.Tensor):
                out[f"optim.{i}.{k}"] = v
    return out


def _load_optimizer_state(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    sd = opt.state_dict()
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        _, i, name = key.split(".", 2)
        state.setdefault(int(i), {})[name] = v
    sd["state"] = state
    opt.load_state_dict(sd)


class _CheckpointModule(nn.Module):
    """Bundles model and optimizer tensors into one state dict for safetensors."""

    def __init__(self, model: nn.Module, opt: torch.optim.Optimizer):
        super().__init__()
        self.model, self.opt = model, opt

    def state_dict(self, *args, **kwargs):  # noqa: D102
        sd = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        return sd | _optimizer_state_tensors(self.opt)


def last_checkpoint(out: Path) -> Path | None:
    files = sorted((out / CKPT_DIR).glob("step_*.safetensors"))
    return files[-1] if files else None


def train(
    model: nn.Module,
    train_data: ImageDataset | object,
    test_data: ImageDataset,
    config: TrainConfig,
    out: str | Path | None = None,
    preprocess=None,
    quiet: bool = False,
    stop_after_step: int | None = None,
) -> TrainResult:
    """Train with SGD; checkpoint, evaluate and measure on a log-spaced schedule.

    Args:
        model: any classifier (N, C, H, W) -> (N, classes).
        train_data: an ImageDataset, or an object with ``for_epoch(epoch) -> ImageDataset``
            (synthetic tasks regenerated every epoch).
        test_data: held-out images for accuracy and the sensitivity probe.
        config: :class:`TrainConfig`; ``precision="auto"`` is resolved here (bf16 where
            the device computes it); callers that record the config resolve it first
            (:meth:`TrainConfig.resolved`).
        out: run folder: ``checkpoints/step_*.safetensors``, ``history.csv``. An existing
            folder with checkpoints is resumed from the last one.
        preprocess: normalisation applied to every batch (after augmentation).
        stop_after_step: stop early (simulates an interruption; for tests).

    Returns:
        :class:`TrainResult` with the trained model and the history rows.
    """
    from defstab.measure import measure_sensitivity
    from defstab.train.distributed import from_environment

    cfg = config
    device = pick_device(cfg.device)
    ddp = from_environment(device)  # several processes under torchrun, else None
    if ddp is not None:
        device = ddp.device
        if cfg.batch_size < ddp.world:
            raise ValueError(
                f"batch size {cfg.batch_size} is smaller than the {ddp.world} processes; the "
                "global batch is split over them."
            )
    main = ddp is None or ddp.is_main  # only the main process evaluates and writes
    cfg, note = cfg.resolved(device)  # "auto" → fp32 or bf16; bf16 without support raises
    if note and main and not quiet:
        print(f"defstab: {note}", file=sys.stderr)
    # channels-last on CPU and GPU: oneDNN and cuDNN convolve NHWC faster (1.2× in fp32
    # here, more in bf16; benchmarks/bench_train.py). Elementwise results are the same;
    # a convolution's rounding may differ from NCHW, deterministically.
    model = model.to(device).to(memory_format=torch.channels_last)
    net = ddp.wrap(model) if ddp is not None else model
    epoch_data = (
        train_data.for_epoch if hasattr(train_data, "for_epoch") else (lambda e: train_data)
    )
    n_train = len(epoch_data(0))
    steps_per_epoch = math.ceil(n_train / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    ckpt_at = set(checkpoint_steps(total, cfg.checkpoints_per_octave, steps_per_epoch))
    opt = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    out = Path(out) if out is not None else None

    # fixed probe: the same test images and deformations at every checkpoint
    probe_idx = torch.randperm(len(test_data), generator=_seeded(cfg.seed, 7))[: cfg.probe_images]
    probe_x = test_data.images(probe_idx)
    probe_def = DeformationSpec.for_images(probe_x.shape[-1], cfg.probe_grid, cfg.probe_max_disp)
    probe_disp = probe_def.sample(len(probe_idx), _seeded(cfg.seed, 11))
    test_eval = test_data
    if cfg.test_images is not None and cfg.test_images < len(test_data):
        test_eval = test_data.subset(
            torch.randperm(len(test_data), generator=_seeded(cfg.seed, 13))[: cfg.test_images]
        )

    history: list[dict] = []
    step, loss_sum, loss_n, correct_sum = 0, 0.0, 0, 0
    if out is not None:
        if main:
            (out / CKPT_DIR).mkdir(parents=True, exist_ok=True)
        last = last_checkpoint(out) if (out / CKPT_DIR).is_dir() else None
        if last is not None:
            state, meta = read_checkpoint(last)
            model.load_state_dict(model_state(state))
            _load_optimizer_state(
                opt, {k: v.to(device) for k, v in state.items() if k.startswith("optim.")}
            )
            step = int(meta["step"])
            if (out / "history.csv").exists():
                history = [
                    _parse_row(r) for r in read_csv(out / "history.csv") if int(r["step"]) <= step
                ]
            if not quiet and main:
                print(f"resuming {out} from step {step}/{total}")

    def record(step: int, train_fit: float | None = None) -> None:
        nonlocal loss_sum, loss_n, correct_sum
        if not main:  # the main process evaluates and writes; the others wait for it
            loss_sum, loss_n, correct_sum = 0.0, 0, 0
            ddp.barrier()
            return
        acc = evaluate(model, test_eval, preprocess, device=device)
        sens = measure_sensitivity(
            model, probe_x, probe_disp, preprocess=preprocess, noise_control=False
        )
        row = {
            "step": step,
            "epoch": step / steps_per_epoch,
            "images_seen": step * cfg.batch_size,
            "lr": _lr_at(cfg, min(step, total - 1), total),
            "train_loss": loss_sum / loss_n if loss_n else float("nan"),
            "train_acc": correct_sum / (loss_n * 1.0) if loss_n else float("nan"),
            "test_acc": acc,
        }
        if cfg.target_train_acc is not None:  # eval-mode accuracy on the training set
            row["train_fit"] = float("nan") if train_fit is None else train_fit
        row |= {f"smooth:{k}": v for k, v in filter_smoothness(model).items()}
        row |= {f"sens:{name}": float(v) for name, v in zip(sens.layers, sens.mean, strict=True)}
        history.append(row)
        if out is not None:
            save_checkpoint(
                _CheckpointModule(model, opt),
                out / CKPT_DIR / f"step_{step:08d}.safetensors",
                {"step": step, "total_steps": total, "test_acc": acc, "config": cfg.to_dict()},
            )
            write_csv(out / "history.csv", history)
        loss_sum, loss_n, correct_sum = 0.0, 0, 0
        if ddp is not None:
            ddp.barrier()

    if step == 0 and (not history or history[-1]["step"] != 0):
        record(0)
    reached = cfg.target_train_acc is not None and any(
        r.get("train_fit", 0) >= cfg.target_train_acc for r in history
    )
    t0 = time.perf_counter()
    bar = None
    if not quiet and main:
        from defstab.progress import progress

        bar = progress(total=total, initial=step, desc="training", unit="step")
    seen, step_seconds = 0, 0.0
    while step < total and not reached:
        t_step = time.perf_counter()
        epoch, pos = divmod(step, steps_per_epoch)
        data = epoch_data(epoch)
        order = torch.randperm(len(data), generator=_seeded(cfg.seed, 1, epoch))
        idx = order[pos * cfg.batch_size : (pos + 1) * cfg.batch_size]
        x = data.images(idx).to(device)
        y = data.labels[idx].to(device)
        if cfg.augment:
            x = random_crop_flip(x, _seeded(cfg.seed, 2, step), pad=cfg.augment_shift)
        if ddp is not None:  # every process drew the same global batch: keep this one's rows
            rows = ddp.slice(len(idx))
            x, y = x[rows], y[rows]
        if preprocess is not None:
            x = preprocess(x)
        if x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        for group in opt.param_groups:
            group["lr"] = _lr_at(cfg, step, total)
        net.train()
        with autocast(device, cfg.precision):
            logits = class_scores(net(x))
            if ddp is None:
                loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
            else:
                # the global batch's mean: DDP averages gradients over processes, so each
                # process scales its slice's sum by world / global batch size
                ce = F.cross_entropy(
                    logits.float(), y, label_smoothing=cfg.label_smoothing, reduction="sum"
                )
                loss = ce * ddp.world / len(idx)
        correct = int((logits.argmax(1) == y).sum())
        if ddp is None:
            batch_ce = float(loss.detach()) * len(idx)
        else:  # the history reports the whole batch, as one process would
            batch_ce, correct = ddp.sum(float(ce.detach()), correct)
        if not math.isfinite(batch_ce):
            raise FloatingPointError(
                f"the loss became {batch_ce / len(idx)} at step {step}; lower the learning rate."
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        loss_sum += batch_ce / cfg.batch_size
        step_seconds += time.perf_counter() - t_step
        correct_sum += correct / cfg.batch_size
        loss_n += len(idx) / cfg.batch_size
        seen += len(idx)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / loss_n:.3f}", img_s=f"{seen / step_seconds:.0f}")
        if step in ckpt_at:
            fit = None
            if cfg.target_train_acc is not None and step % steps_per_epoch == 0:
                # every process evaluates (their models are equal), so all stop together
                fit = evaluate(model, data, preprocess, device=device)
                reached = fit >= cfg.target_train_acc
            record(step, fit)
        if stop_after_step is not None and step >= stop_after_step:
            break
    if bar is not None:
        bar.close()
    model.to(memory_format=torch.contiguous_format).eval()  # NCHW again, as measurements read it
    if out is not None and main:
        write_json(
            out / "train_summary.json",
            {
                "steps": step,
                "total_steps": total,
                "finished": step >= total or reached,
                "final_test_acc": history[-1]["test_acc"] if history else None,
            }
            | (
                {
                    "target_train_acc": cfg.target_train_acc,
                    "reached_target": reached,
                    "epochs_trained": step / steps_per_epoch,
                    "epoch_cap": cfg.epochs,
                }
                if cfg.target_train_acc is not None
                else {}
            ),
        )
    return TrainResult(model, history, out, step, time.perf_counter() - t0, step_seconds)


def _parse_row(row: dict[str, str]) -> dict:
    out = {}
    for k, v in row.items():
        try:
            out[k] = int(v) if k in ("step", "images_seen") else float(v)
        except ValueError:
            out[k] = v
    return out
