"""The training loop: seeded, resumable, with an early ("epoch 3") and a truly best checkpoint.

Guarantees (each tested):

* **Seeded.** The initialisation comes from ``seed``; the shuffling of epoch ``e`` from a generator seeded by
  ``(seed, e)``, so nothing depends on how many epochs ran in this process — which is what makes resuming exact.
  ``seed = 0`` is a seed like any other (the published code treated it as "unseeded").
* **Resumable.** After every epoch the full state (model, optimiser, scheduler, history, best-so-far, and torch's
  global random state, from which a regulariser may draw: the tutorial's equivariance penalty draws its group
  elements there) is written atomically to ``state/last.pt``. A killed job that is rerun continues from there and
  ends with the same numbers as an uninterrupted run. The declared outputs (``best.pt``, ``epoch3.pt``,
  ``history.csv``, ``train.json``) are written only at the end, so Snakemake never sees a partial result, and
  deleting incomplete outputs never loses the saved state.
* **Extendable.** ``epochs`` is not part of a run's identity: raising it continues a finished run from its saved
  state and ends with the numbers of an uninterrupted run of the new length (the lr schedule, the shuffling and
  early stopping depend on the epoch index only), so a user whose curves have not flattened pays only for the new
  epochs. Lowering it below the epochs already run is refused: the state cannot be un-trained.
* **Truly best.** ``best.pt`` is a copy of the weights at the epoch with the lowest validation RMSE, taken when
  that epoch ends — not a reference to the live model (the published code's "best" model was the last one).
* **Linear alpha.** The loss is ``data_loss + alpha * model.regularizer(x)``, on every device.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..atomic import atomic_path, write_json
from ..models.base import ModelSpec, count_parameters, load_model_state, model_state
from ..models.registry import build_model
from ..runs import (
    BEST_CHECKPOINT,
    CHECKPOINTS,
    EPOCH_CHECKPOINTS,
    HISTORY_FILE,
    MIN_EPOCHS,
    SUMMARY_FILE,
    checkpoint_file,
)
from ..settings import settings_from_dict
from . import checkpoint
from .tasks import Task, rollout_loss, score

log = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite: training stops before the optimiser step that would spread it."""


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 50
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 4e-4
    lr_gamma: float = 0.95
    patience: int = 10
    eval_batch_size: int = 64
    device: str = "auto"  # "auto": CUDA when available, else CPU
    # issue 14: bfloat16 autocast (+ TF32 matmuls on CUDA) for the training steps and the per-epoch validation;
    # the evaluation written to eval_*.json stays float32 (docs/decisions.md, "Issue 14")
    amp: bool = False
    # issue 14: at most this many batches per epoch (0: all) — the paper-scale execution check's truncation
    max_batches: int = 0

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        device = torch.device(self.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            # the config validation catches a torch built without CUDA; this is a job on a machine without a GPU
            built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "built without CUDA"
            raise RuntimeError(
                f"training.device is {self.device!r}, but torch sees no CUDA device here (torch {torch.__version__}, "
                f"{built}); use 'auto' (CUDA when available) or 'cpu'"
            )
        return device

    def __post_init__(self) -> None:
        if self.epochs < MIN_EPOCHS:
            raise ValueError(f"epochs ({self.epochs}) must be >= {MIN_EPOCHS}: checkpoints {EPOCH_CHECKPOINTS}")
        if self.patience < 1 or self.batch_size < 1:
            raise ValueError("patience and batch_size must be positive")
        if self.max_batches < 0:
            raise ValueError(f"max_batches must be >= 0 (0: every batch), got {self.max_batches}")

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        """bfloat16 autocast on ``device`` when ``amp`` is on, else nothing (float32 throughout)."""
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainSettings:
        return settings_from_dict(cls, d, "training")


# Settings added after runs existed: left out of a run's identity while at their default, so a state/last.pt
# written before they existed still resumes.
_LATER_DEFAULTS = {"amp": False, "max_batches": 0}


def _identity_settings(settings: TrainSettings) -> dict[str, Any]:
    # the device is not part of a run's identity: a run started on a GPU may resume on a CPU and vice versa;
    # nor is the number of epochs: a longer run continues a shorter one exactly ("Extendable" above)
    return {
        k: v
        for k, v in dataclasses.asdict(settings).items()
        if k not in ("device", "epochs") and not (k in _LATER_DEFAULTS and v == _LATER_DEFAULTS[k])
    }


def _without_epochs(identity: dict[str, Any]) -> dict[str, Any]:
    """A saved identity as today's: states written before "Extendable" held ``epochs`` in their settings."""
    settings = {k: v for k, v in identity["settings"].items() if k != "epochs"}
    return {**identity, "settings": settings}


def _prepare_device(device: torch.device, amp: bool) -> None:
    """TF32 matmuls/convolutions when amp is on (float32 otherwise), and fresh peak-memory counters on CUDA."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = amp
        torch.backends.cudnn.allow_tf32 = amp
        torch.cuda.reset_peak_memory_stats(device)


def _rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """torch's global random state after an epoch: what the next epoch's global draws continue from."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _restore_rng_state(state: dict[str, torch.Tensor] | None, device: torch.device, last: Path, epoch: int) -> None:
    """Continue the global random stream where the saved run left it (not where re-seeding and building put it)."""
    if state is None:
        log.warning(
            "%s was saved before the random state was kept: a regulariser's random draws after epoch %d differ "
            "from an uninterrupted run's",
            last,
            epoch,
        )
        return
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _peak_memory_mb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def _stop_on_non_finite(loss: torch.Tensor, data_loss: torch.Tensor, epoch: int, batch: int, last: Path) -> None:
    """Raise :class:`NonFiniteLossError` naming the epoch, the batch and the state that is kept.

    Without this, a NaN loss never improves on the best validation error, no ``best`` checkpoint is ever written,
    and the run fails much later with a missing file (and again on every rerun). ``state/last.pt`` is the last
    epoch that ended with finite numbers; it is kept, so a rerun with other settings can be compared against it.
    """
    kept = f"the last good state ({last}) is kept" if last.exists() else "no epoch finished, so no state was saved"
    part = "the data loss" if not bool(torch.isfinite(data_loss)) else "the regulariser term (alpha × penalty)"
    raise NonFiniteLossError(
        f"non-finite training loss ({float(loss)}) in epoch {epoch}, batch {batch}: {part} is not finite; "
        f"{kept}. Check the data for NaN/inf or constant fields, or lower the learning rate."
    )


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(1_000_003 * (seed + 1) + epoch)


#: what torch.optim.Adam's param group has and equidyn's own Adam (training/optim.py, issue 14) did not save, at the
#: values that reproduce its arithmetic: L2 weight decay, no amsgrad, torch's default algorithm per device
_ADAM_GROUP_DEFAULTS = {
    "foreach": None,
    "capturable": False,
    "differentiable": False,
    "fused": None,
    "decoupled_weight_decay": False,
}


def torch_optimiser_state(
    optimiser_state: dict[str, Any], scheduler_state: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A saved optimiser and scheduler state in the layout of ``torch.optim.Adam`` and its ``ExponentialLR``.

    Why: until issue 22 the trainer ran its own Adam and ExponentialLR (torch's arithmetic, bit for bit, without
    torch.optim's ``torch._dynamo`` import), and ``state/last.pt`` files written by them must still resume. Their
    layout was torch's less a few entries: the param group lacked torch's flags and ``initial_lr``, the scheduler
    saved ``gamma``, ``base_lrs`` and ``last_epoch`` only. torch would fill the flags itself, but not the scheduler's
    ``_last_lr`` and ``_step_count`` (they would keep a fresh scheduler's values, so ``get_last_lr()`` would be the
    first epoch's). Every missing entry is filled here with what torch's own classes would hold at that point; a
    state that torch wrote passes unchanged.
    """
    base_lrs = list(scheduler_state["base_lrs"])
    groups = [
        {**_ADAM_GROUP_DEFAULTS, "initial_lr": base, **group}
        for group, base in zip(optimiser_state["param_groups"], base_lrs, strict=True)
    ]
    last_epoch = int(scheduler_state["last_epoch"])
    scheduler = {
        "_step_count": last_epoch + 1,
        "_is_initial": False,
        "_get_lr_called_within_step": False,
        "_last_lr": [group["lr"] for group in groups],
        **scheduler_state,
    }
    return {**optimiser_state, "param_groups": groups}, scheduler


def train(
    task: Task,
    spec: ModelSpec,
    settings: TrainSettings,
    run_dir: str | os.PathLike,
    *,
    seed: int,
    alpha: float,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``spec`` on ``task`` into ``run_dir``; resume from ``run_dir/state/last.pt`` if present."""
    run_dir = Path(run_dir)
    state_dir = run_dir / "state"
    state_dir.mkdir(parents=True, exist_ok=True)
    identity = {"spec": spec.to_dict(), "settings": _identity_settings(settings), "seed": seed, "alpha": alpha}
    device = settings.torch_device()
    _prepare_device(device, settings.amp)
    task.to(device)  # the data lives on the device for the whole job: batches are indexed there, never copied

    torch.manual_seed(seed)
    model = build_model(spec).to(device)
    if alpha and not model.has_regularizer:
        raise ValueError(f"model {spec.name!r} has no regularizer, so alpha={alpha} would do nothing; use alpha 0")
    # Adam with L2 weight decay (added to the gradient, not decoupled as in AdamW); torch's default algorithm per
    # device (single-tensor on the CPU, foreach on an accelerator)
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimiser, gamma=settings.lr_gamma)
    history: list[dict[str, float]] = []
    best_val, best_epoch, epoch, stale = math.inf, 0, 0, 0

    last = state_dir / "last.pt"
    if last.exists():
        state = checkpoint.load(last)
        if _without_epochs(state["identity"]) != identity:
            raise RuntimeError(
                f"{last} was written by a different configuration (model, training settings, seed or alpha); "
                "delete the run directory to retrain"
            )
        load_model_state(model, state["model"])
        optimiser_state, scheduler_state = torch_optimiser_state(state["optimiser"], state["scheduler"])
        optimiser.load_state_dict(optimiser_state)
        scheduler.load_state_dict(scheduler_state)
        history, best_val, best_epoch, epoch, stale = (
            state["history"],
            state["best_val"],
            state["best_epoch"],
            state["epoch"],
            state["stale"],
        )
        _restore_rng_state(state.get("rng"), device, last, epoch)
        if epoch > settings.epochs:
            raise RuntimeError(
                f"{last} has trained {epoch} epochs, more than the configured {settings.epochs}; "
                "delete the run directory to retrain with fewer"
            )
        log.info("resuming %s after epoch %d", run_dir, epoch)

    payload_base = {"spec": spec.to_dict(), "seed": seed, "alpha": alpha, "meta": meta or {}}
    n_params = count_parameters(model)
    while epoch < settings.epochs and (stale < settings.patience or epoch < MIN_EPOCHS):
        epoch += 1
        t0 = time.perf_counter()
        model.train()
        # drawn on the CPU (the same order on every device), moved once per epoch
        order = torch.randperm(task.n("train"), generator=_epoch_generator(seed, epoch)).to(device)
        batches = order.split(settings.batch_size)
        if settings.max_batches:
            batches = batches[: settings.max_batches]
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)  # summed on the device: no sync per batch
        sums = {"n": 0}
        x = None
        augment = getattr(task, "augment", None)
        augment_generator = _epoch_generator(seed + 7919, epoch)  # its own stream: augmentation never shifts shuffling
        for batch, idx in enumerate(batches, start=1):
            x, y = task.batch("train", idx)
            if augment is not None:
                x, y = augment(x, y, augment_generator)
            with settings.autocast(device):
                data_loss = rollout_loss(task, model, x, y)
                loss = data_loss + alpha * model.regularizer(x) if alpha else data_loss
            if not bool(torch.isfinite(loss)):
                _stop_on_non_finite(loss, data_loss, epoch, batch, last)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            project = getattr(model, "project_gradients", None)  # a constrained model keeps its constraint
            if project is not None:
                project()
            optimiser.step()
            loss_sum += data_loss.detach().double() * len(idx)
            sums["n"] += len(idx)
        scheduler.step()

        model.eval()
        with torch.no_grad(), settings.autocast(device):
            val = score(task, model, "valid", settings.eval_batch_size)
            reg = float(model.regularizer(x)) if x is not None else 0.0
        steps = task.steps["train"]
        train_loss = float(loss_sum) / sums["n"]
        metric = "rmse" if task.loss == "mse" else "mae"
        # train error in physical units from the optimised loss (mean per-step loss, train-mode BN)
        per_step = train_loss / steps
        train_err = (math.sqrt(per_step) if task.loss == "mse" else per_step) * task.scale
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            f"train_{metric}": train_err,
            f"val_{metric}": val[metric],
            "val_rmse": val["rmse"],
            "val_mae": val["mae"],
            "regularizer": reg,
            "lr": optimiser.param_groups[0]["lr"],
            "seconds": time.perf_counter() - t0,
        }
        history.append(row)
        log.info("epoch %d: %s", epoch, {k: round(v, 6) for k, v in row.items()})

        snapshot = {**payload_base, "epoch": epoch, "val": val, "model": model_state(model)}
        if val[metric] < best_val:
            best_val, best_epoch, stale = val[metric], epoch, 0
            checkpoint.save(state_dir / checkpoint_file(BEST_CHECKPOINT), snapshot)
        else:
            stale += 1
        for name in (name for name, at in EPOCH_CHECKPOINTS.items() if at == epoch):
            checkpoint.save(state_dir / checkpoint_file(name), snapshot)
        checkpoint.save(
            last,
            {
                "identity": identity,
                "model": snapshot["model"],
                "optimiser": optimiser.state_dict(),
                "scheduler": scheduler.state_dict(),
                "history": history,
                "best_val": best_val,
                "best_epoch": best_epoch,
                "epoch": epoch,
                "stale": stale,
                "rng": _rng_state(device),
            },
        )

    if epoch < MIN_EPOCHS:
        raise RuntimeError(f"training stopped after {epoch} epochs, before the checkpoints {EPOCH_CHECKPOINTS}")
    for name in map(checkpoint_file, CHECKPOINTS):
        # stamped with this job's lineage: a checkpoint saved before the run was extended (or resumed at another
        # commit) carries the run that produced the outputs, not the one that happened to save it
        checkpoint.save(run_dir / name, {**checkpoint.load(state_dir / name), **payload_base})
    with atomic_path(run_dir / HISTORY_FILE) as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)
    per_epoch = task.n("train")
    if settings.max_batches:
        per_epoch = min(per_epoch, settings.max_batches * settings.batch_size)
    summary = {
        **payload_base,
        "params": n_params,
        "hidden": spec.hidden,
        "epochs_run": epoch,
        "best_epoch": best_epoch,
        "best_val": best_val,
        "stopped_early": stale >= settings.patience,
        "train_seconds": sum(r["seconds"] for r in history),
        # issue 23: what the compute of a run is counted from (forward FLOPs per sample × samples seen)
        "train_samples_per_epoch": per_epoch,
        "samples_seen": per_epoch * epoch,
        # issue 14: what a cluster request is sized from
        "seconds_per_epoch": statistics.median(r["seconds"] for r in history),
        "device": str(device),
        "amp": settings.amp,
        "gpu_peak_mem_mb": _peak_memory_mb(device),
    }
    write_json(run_dir / SUMMARY_FILE, summary)
    return summary
