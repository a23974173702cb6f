"""The training loop: build data, model and optimiser; train, evaluate and checkpoint.

run_training() is what training/train.py calls; each phase is a helper of its own so tests
and other scripts can reuse them.
"""

import dataclasses
import logging
import math
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from protomtl_ros.network import build_model

from . import checkpoint as ckpt
from .config import Config, save_config
from .data import DataError, build_datasets, label_counts
from .distributed import (DistInfo, ResumableSampler, all_ranks_agree, barrier,
                          cleanup_distributed, setup_distributed)
from .losses import MultiTaskLoss
from .metrics import MultiTaskMetrics
from .run_log import RunLog

LOGGER = logging.getLogger("protomtl_training")
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass
class TrainState:
    """Counters saved in every checkpoint."""

    step: int = 0
    epoch: int = 0
    best_metric: float | None = None
    skipped_steps: int = 0


@dataclasses.dataclass
class Run:
    """Everything the loop works on, built once by prepare_run."""

    config: Config
    info: DistInfo
    output_dir: Path
    train_loader: DataLoader
    sampler: ResumableSampler
    val_loader: DataLoader
    model: torch.nn.Module
    network: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    loss_fn: MultiTaskLoss
    steps_per_epoch: int
    total_steps: int
    log: RunLog
    state: TrainState = dataclasses.field(default_factory=TrainState)
    # Loss values and times since the last progress line (may span epochs).
    window: dict = dataclasses.field(default_factory=dict)
    window_times: list = dataclasses.field(default_factory=lambda: [0.0, 0.0])


def resolve_data_path(path):
    """Resolve a relative data path against the working folder, then the repository root."""
    if path is None or Path(path).is_absolute() or Path(path).exists():
        return path
    candidate = REPO_ROOT / path
    return str(candidate) if candidate.exists() else path


def build_data(config: Config, info: DistInfo):
    """Return (train_loader, sampler, val_loader) at the network input size."""
    model_config = config.model_config()
    data_config = dataclasses.replace(
        config.data,
        root=resolve_data_path(config.data.root),
        manifest=resolve_data_path(config.data.manifest),
        extra_manifest=resolve_data_path(config.data.extra_manifest),
    )
    train_set, val_set = build_datasets(data_config, model_config.input_height,
                                        model_config.input_width, seed=config.train.seed)
    if len(train_set) < config.train.batch_size * info.world_size:
        raise DataError(f"the training set has {len(train_set)} images, fewer than one batch "
                         f"({config.train.batch_size} x {info.world_size} processes): lower "
                         "train.batch_size or add data")
    if info.is_main:
        LOGGER.info("train images %d (labelled per task %s), val images %d", len(train_set),
                    label_counts(train_set), len(val_set))

    sampler = ResumableSampler(train_set, info.world_size, info.rank, seed=config.train.seed)
    workers = config.data.num_workers
    train_loader = DataLoader(train_set, batch_size=config.train.batch_size, sampler=sampler,
                              num_workers=workers, drop_last=True,
                              pin_memory=info.device.type == "cuda")
    val_loader = DataLoader(val_set, batch_size=config.train.batch_size, shuffle=False,
                            num_workers=workers)
    return train_loader, sampler, val_loader


def build_network(config: Config, info: DistInfo):
    """Return (model to train, possibly DDP-wrapped; the plain network inside it)."""
    network = build_model(config.model_config()).to(info.device)
    model = network
    if info.distributed:
        device_ids = [info.device.index] if info.device.type == "cuda" else None
        model = DistributedDataParallel(
            network, device_ids=device_ids,
            find_unused_parameters=config.train.ddp_find_unused_parameters)
    return model, network


def build_optimizer(config: Config, model: torch.nn.Module, total_steps: int):
    """Return Adam with weight decay and a poly learning-rate schedule over total_steps."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.train.lr,
                                 weight_decay=config.train.weight_decay)
    power = config.train.poly_power

    def poly(step):
        return max(1.0 - step / total_steps, 0.0) ** power

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, poly)
    return optimizer, scheduler


def prepare_run(config: Config, output_dir, info: DistInfo) -> Run:
    """Seed, build every part of a run, and write the resolved config (rank 0)."""
    output_dir = Path(output_dir)
    if config.train.cpu_threads:
        torch.set_num_threads(config.train.cpu_threads)
    torch.manual_seed(config.train.seed)
    if config.train.deterministic:
        torch.use_deterministic_algorithms(True)

    # The datasets are opened before the run folder is written, so a missing path or a
    # malformed manifest leaves no half-made run behind. Files that are unreadable show up
    # only when a batch loads them.
    train_loader, sampler, val_loader = build_data(config, info)
    if info.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, output_dir / "config.yaml")
    model, network = build_network(config, info)
    steps_per_epoch = len(sampler) // config.train.batch_size
    total_steps = config.train.max_steps or config.train.epochs * steps_per_epoch
    optimizer, scheduler = build_optimizer(config, model, total_steps)
    scaler = torch.amp.GradScaler("cuda", enabled=config.train.amp
                                  and info.device.type == "cuda")
    return Run(config, info, output_dir, train_loader, sampler, val_loader, model, network,
               optimizer, scheduler, scaler, MultiTaskLoss(config.loss), steps_per_epoch,
               total_steps, RunLog(output_dir, enabled=info.is_main))


def to_device(batch: dict, device: torch.device) -> dict:
    """Move a batch (with its nested "valid" dict) to device."""
    moved = {key: value.to(device, non_blocking=True) for key, value in batch.items()
             if key != "valid"}
    moved["valid"] = {key: value.to(device, non_blocking=True)
                      for key, value in batch["valid"].items()}
    return moved


def autocast(run: Run):
    device_type = run.info.device.type
    dtype = torch.float16 if device_type == "cuda" else torch.bfloat16
    return torch.autocast(device_type, dtype=dtype, enabled=run.config.train.amp)


def train_step(run: Run, batch: dict) -> dict | None:
    """Run one optimiser step; return the loss terms, or None when the step was skipped.

    A step whose loss or gradient norm is NaN/Inf on any rank is skipped on every rank, so
    the weights never take a non-finite update.
    """
    run.optimizer.zero_grad(set_to_none=True)
    with autocast(run):
        outputs = run.model(batch["image"])
    terms = run.loss_fn(outputs, batch)
    if not all_ranks_agree(bool(torch.isfinite(terms["total"])), run.info):
        return None

    run.scaler.scale(terms["total"]).backward()
    run.scaler.unscale_(run.optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(),
                                               run.config.train.grad_clip_norm)
    if not torch.isfinite(grad_norm):
        # GradScaler skips the update itself; without AMP skip it here.
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.update()
        return None
    run.scaler.step(run.optimizer)
    run.scaler.update()
    return {name: float(value.detach()) for name, value in terms.items()}


@torch.no_grad()
def evaluate(network: torch.nn.Module, loader: DataLoader, device: torch.device,
             num_classes: int, amp: bool = False):
    """Return (metrics dict, first batch, its outputs) of network in eval mode."""
    was_training = network.training
    network.eval()
    metrics = MultiTaskMetrics(num_classes)
    first = None
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    for batch in loader:
        batch = to_device(batch, device)
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            outputs = network(batch["image"])
        outputs = {key: value.float() for key, value in outputs.items() if key != "aux"}
        metrics.update(outputs, batch)
        if first is None:
            first = (batch, outputs)
    network.train(was_training)
    return metrics.compute(), first


def checkpoint_state(run: Run) -> dict:
    """Collect the training state of a run as a weights_only-loadable dict."""
    return {
        "model_config": run.config.model_config().to_dict(),
        "model": run.network.state_dict(),
        "train_config": run.config.to_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "scaler": run.scaler.state_dict(),
        "step": run.state.step,
        "epoch": run.state.epoch,
        "best_metric": run.state.best_metric,
        "skipped_steps": run.state.skipped_steps,
        "rng": ckpt.capture_rng_state(),
    }


def save_run_checkpoint(run: Run, name: str):
    """Write last.pt or best.pt on rank 0, unless the weights hold a NaN/Inf."""
    if not run.info.is_main:
        return
    if not ckpt.all_finite(run.network):
        LOGGER.error("weights contain NaN/Inf at step %d: %s not written, the previous "
                     "file is kept", run.state.step, name)
        return
    ckpt.save_checkpoint(checkpoint_state(run), run.output_dir / name)


def restore_run(run: Run, path):
    """Load a training checkpoint into a run so it continues exactly where it stopped."""
    content = ckpt.load_checkpoint(path, map_location=run.info.device)
    for key in ("optimizer", "scheduler", "step", "rng"):
        if key not in content:
            raise ckpt.CheckpointError(f"{path} lacks {key!r}: it is not a training "
                                       "checkpoint and cannot be resumed")
    run.network.load_state_dict(content["model"])
    run.optimizer.load_state_dict(content["optimizer"])
    run.scheduler.load_state_dict(content["scheduler"])
    if "scaler" in content:
        run.scaler.load_state_dict(content["scaler"])
    run.state = TrainState(content["step"], content["epoch"], content["best_metric"],
                           content.get("skipped_steps", 0))
    ckpt.restore_rng_state(content["rng"])
    if run.info.is_main:
        LOGGER.info("resumed from %s at step %d", path, run.state.step)


def is_better(value: float, best: float | None, mode: str) -> bool:
    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    return value > best if mode == "max" else value < best


def evaluate_and_record(run: Run, train_means: dict):
    """Evaluate on rank 0, log the record and panels, write last.pt and best.pt."""
    if run.info.is_main:
        metrics, first = evaluate(run.network, run.val_loader, run.info.device,
                                  run.network.config.num_classes, run.config.train.amp)
        record = {"epoch": run.state.epoch, "step": run.state.step,
                  "skipped_steps": run.state.skipped_steps}
        record.update({f"train.{name}": value for name, value in train_means.items()})
        record.update(metrics)
        run.log.epoch_metrics(record)
        if first is not None:
            run.log.panels(*first, run.state.step, run.config.train.num_panels)
        LOGGER.info("eval step %d: %s", run.state.step,
                    " ".join(f"{key} {value:.4f}" for key, value in metrics.items()))

        value = metrics.get(run.config.train.best_metric)
        if is_better(value, run.state.best_metric, run.config.train.best_mode):
            run.state.best_metric = value
            save_run_checkpoint(run, "best.pt")
        save_run_checkpoint(run, "last.pt")
    barrier(run.info)


def train_epoch(run: Run, stop_after_steps: int | None) -> dict:
    """Train from the current step to the end of its epoch; return mean loss terms."""
    epoch = run.state.step // run.steps_per_epoch
    run.state.epoch = epoch
    run.sampler.set_epoch(epoch)
    run.train_loader.dataset.set_epoch(epoch)
    done_in_epoch = run.state.step - epoch * run.steps_per_epoch
    run.sampler.set_start(done_in_epoch * run.config.train.batch_size)

    sums, count = {}, 0
    tick = time.perf_counter()
    for batch in run.train_loader:
        batch = to_device(batch, run.info.device)
        loaded = time.perf_counter()
        terms = train_step(run, batch)
        run.scheduler.step()
        run.state.step += 1
        if terms is None:
            run.state.skipped_steps += 1
            LOGGER.warning("step %d skipped: non-finite loss or gradient (%d skipped so far)",
                           run.state.step, run.state.skipped_steps)
        else:
            count += 1
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + value
                run.window.setdefault(name, []).append(value)

        now = time.perf_counter()
        run.window_times[0] += loaded - tick
        run.window_times[1] += now - tick
        tick = now
        if run.state.step % run.config.train.log_every == 0:
            log_progress(run)

        every = run.config.train.checkpoint_every_steps
        if every and run.state.step % every == 0:
            save_run_checkpoint(run, "last.pt")
        if stop_after_steps is not None and run.state.step >= stop_after_steps:
            break
        if run.state.step >= run.total_steps or run.state.step % run.steps_per_epoch == 0:
            break
    return {name: value / max(count, 1) for name, value in sums.items()}


def log_progress(run: Run):
    """Emit the progress line of the steps since the previous one, then reset the window."""
    steps = run.config.train.log_every
    means = {name: sum(values) / len(values) for name, values in run.window.items()}
    if means:
        run.log.progress(run.state.step, run.total_steps, means,
                         run.optimizer.param_groups[0]["lr"], run.window_times[0] / steps,
                         run.window_times[1] / steps, run.state.skipped_steps)
    run.window = {}
    run.window_times = [0.0, 0.0]


def train_loop(run: Run, stop_after_steps: int | None = None) -> dict:
    """Train until total_steps (or stop_after_steps, then write last.pt); return a summary."""
    if run.info.is_main:
        LOGGER.info("training %d steps (%d per epoch) on %s, %d process(es)", run.total_steps,
                    run.steps_per_epoch, run.info.device, run.info.world_size)
    run.model.train()
    last_terms = {}
    while run.state.step < run.total_steps:
        last_terms = train_epoch(run, stop_after_steps)
        if stop_after_steps is not None and run.state.step >= stop_after_steps:
            save_run_checkpoint(run, "last.pt")
            barrier(run.info)
            break
        epoch_done = run.state.step // run.steps_per_epoch
        finished = run.state.step >= run.total_steps
        if finished or epoch_done % run.config.train.eval_every_epochs == 0:
            evaluate_and_record(run, last_terms)
    return {"step": run.state.step, "skipped_steps": run.state.skipped_steps,
            "best_metric": run.state.best_metric, "train": last_terms}


def run_training(config: Config, output_dir, resume: bool = False,
                 stop_after_steps: int | None = None) -> dict:
    """Train a model as configured, writing the run folder; return a summary dict."""
    info = setup_distributed(config.train.device)
    try:
        run = prepare_run(config, output_dir, info)
        if resume:
            restore_run(run, Path(output_dir) / "last.pt")
        try:
            return train_loop(run, stop_after_steps)
        finally:
            run.log.close()
    finally:
        cleanup_distributed()
