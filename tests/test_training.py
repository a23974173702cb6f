"""Training loop: learning under one label per image, resume, NaN steps, DDP, CLI, config."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from protomtl_training.checkpoint import load_checkpoint
from protomtl_training.config import ConfigError, load_config
from protomtl_training.data import MultiTaskDataset
from protomtl_training.distributed import DistInfo
from protomtl_training.engine import evaluate, prepare_run, restore_run, train_loop
from protomtl_training.losses import depth_loss, normals_loss, semseg_loss
from protomtl_training.metrics import MultiTaskMetrics, trivial_predictions

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]
SMALL = ["model.input_height=64", "model.input_width=96", "train.log_every=10",
         "data.num_val_scenes=8"]


def small_config(*overrides):
    return load_config(None, SMALL + list(overrides))


@torch.no_grad()
def task_losses(network, loader):
    network.eval()
    sums = {"semseg": 0.0, "depth": 0.0, "normals": 0.0}
    for batch in loader:
        out = network(batch["image"])
        valid = batch["valid"]
        sums["semseg"] += semseg_loss(out["semseg"], batch["semseg"], valid["semseg"]).sum()
        sums["depth"] += depth_loss(out["depth"], batch["depth"], valid["depth"]).sum()
        sums["normals"] += normals_loss(out["normals"], batch["normals"],
                                        valid["normals"]).sum()
    network.train()
    return {task: float(value) for task, value in sums.items()}


def trivial_metrics(run):
    """Metrics of the best constant predictor fitted on the training set."""
    train = MultiTaskDataset(run.train_loader.dataset.raw, 64, 96)
    depths, class_counts, normal_sum = [], torch.zeros(13), torch.zeros(3)
    for index in range(len(train)):
        sample = train[index]
        valid = sample["valid"]
        depths.append(sample["depth"][0][valid["depth"]])
        class_counts += torch.bincount(sample["semseg"][valid["semseg"]], minlength=13)[:13]
        normal_sum += sample["normals"][:, valid["normals"]].sum(1)
    mean_depth = float(torch.cat(depths).mean())
    normal = (normal_sum / normal_sum.norm()).tolist()
    metrics = MultiTaskMetrics(13)
    for batch in run.val_loader:
        metrics.update(trivial_predictions(batch, 13, mean_depth, int(class_counts.argmax()),
                                           normal), batch)
    return metrics.compute()


@pytest.mark.slow
def test_onelabel_training_learns(tmp_path):
    # 80 steps of batch 4 at 64x96 on 48 scenes, one task labelled per image: about a
    # minute on one CPU thread. Augmentation is off so the run converges in few steps.
    config = small_config("data.num_train_scenes=48", "data.labels=onelabel",
                          "data.augment=false", "train.batch_size=4", "train.lr=2e-3",
                          "train.max_steps=80", "train.eval_every_epochs=100")
    run = prepare_run(config, tmp_path, DistInfo())
    before = task_losses(run.network, run.val_loader)
    summary = train_loop(run)
    after = task_losses(run.network, run.val_loader)
    metrics, _ = evaluate(run.network, run.val_loader, run.info.device, 13)
    trivial = trivial_metrics(run)

    assert summary["step"] == 80
    assert summary["skipped_steps"] == 0
    for task in ("semseg", "depth", "normals"):
        assert after[task] < 0.8 * before[task], (task, before[task], after[task])
    assert metrics["semseg.miou"] > trivial["semseg.miou"]
    assert metrics["semseg.pixel_acc"] > trivial["semseg.pixel_acc"]
    assert metrics["depth.abs_err"] < trivial["depth.abs_err"]
    assert metrics["normals.mean"] < trivial["normals.mean"]
    assert (tmp_path / "last.pt").is_file()
    assert (tmp_path / "best.pt").is_file()
    assert (tmp_path / "config.yaml").is_file()
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 1
    assert list((tmp_path / "panels").glob("*.png"))


def record_losses(run):
    losses = []
    original = run.loss_fn

    def recording(outputs, batch):
        terms = original(outputs, batch)
        losses.append(terms["total"].item())
        return terms

    run.loss_fn = recording
    return losses


@pytest.mark.slow
def test_resume_matches_uninterrupted(tmp_path):
    # 8 scenes with batch 2: 4 steps per epoch, so the run stops mid-epoch 0 and the
    # resumed part crosses into epoch 1 (new shuffle and augmentation draws).
    overrides = ("data.num_train_scenes=8", "data.num_val_scenes=2", "data.labels=onelabel",
                 "train.batch_size=2", "train.lr=1e-3", "train.max_steps=6",
                 "train.deterministic=true")
    torch.use_deterministic_algorithms(True)
    try:
        full = prepare_run(small_config(*overrides), tmp_path / "full", DistInfo())
        full_losses = record_losses(full)
        train_loop(full)

        first = prepare_run(small_config(*overrides), tmp_path / "split", DistInfo())
        train_loop(first, stop_after_steps=3)
        resumed = prepare_run(small_config(*overrides), tmp_path / "split", DistInfo())
        restore_run(resumed, tmp_path / "split" / "last.pt")
        resumed_losses = record_losses(resumed)
        train_loop(resumed)
    finally:
        torch.use_deterministic_algorithms(False)

    assert len(full_losses) == 6
    assert resumed.state.step == 6
    assert resumed_losses == pytest.approx(full_losses[3:], rel=1e-6, abs=1e-7)


def test_nan_step_skipped_and_not_saved(tmp_path):
    config = small_config("data.num_train_scenes=4", "data.num_val_scenes=2",
                          "train.batch_size=2", "train.max_steps=2", "train.lr=1e-3")
    run = prepare_run(config, tmp_path, DistInfo())
    original = run.loss_fn
    calls = []

    def nan_on_first_step(outputs, batch):
        terms = original(outputs, batch)
        calls.append(1)
        if len(calls) == 1:
            terms["total"] = terms["total"] * float("nan")
        return terms

    run.loss_fn = nan_on_first_step
    summary = train_loop(run)
    content = load_checkpoint(tmp_path / "last.pt")
    assert summary["skipped_steps"] == 1
    assert content["skipped_steps"] == 1
    assert all(torch.isfinite(value).all() for value in content["model"].values()
               if value.is_floating_point())


def test_checkpoint_loads_weights_only(tmp_path):
    config = small_config("data.num_train_scenes=2", "data.num_val_scenes=1",
                          "train.batch_size=2", "train.max_steps=1")
    train_loop(prepare_run(config, tmp_path, DistInfo()))
    content = torch.load(tmp_path / "last.pt", weights_only=True)
    assert content["format_version"] == 1
    assert content["model_config"]["input_height"] == 64
    assert content["train_config"]["train"]["max_steps"] == 1
    assert content["step"] == 1
    assert not list(tmp_path.glob(".*.tmp-*"))


def test_config_unknown_key_named():
    with pytest.raises(ConfigError, match="train.max_stepz"):
        load_config(None, ["train.max_stepz=3"])


def test_config_file_unknown_key_named(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("data:\n  labelz: onelabel\n")
    with pytest.raises(ConfigError, match="data.labelz"):
        load_config(path)


def test_config_model_unknown_key_named():
    with pytest.raises(ConfigError, match="widht"):
        load_config(None, ["model.widht=3"])


def test_config_override_parses_numbers():
    config = load_config(REPO / "config" / "training" / "tiny_scenes.yaml",
                         ["train.lr=1e-4", "train.max_steps=5"])
    assert config.train.lr == pytest.approx(1e-4)
    assert config.train.max_steps == 5
    assert config.data.labels == "onelabel"


@pytest.mark.parametrize("override, message", [
    ("train.max_steps=abc", "train.max_steps='abc' is invalid: use an integer"),
    ("train.max_steps=2.5", "train.max_steps=2.5 is invalid: use an integer"),
    ("train.amp=maybe", "train.amp='maybe' is invalid: use true or false"),
    ("train.lr=fast", "train.lr='fast' is invalid: use a number"),
    ("train.device=3", "train.device=3 is invalid: expected text"),
    ("train.batch_size=true", "train.batch_size=True is invalid: expected an integer"),
])
def test_config_value_of_wrong_type(override, message):
    with pytest.raises(ConfigError) as error:
        load_config(None, [override])
    assert message in str(error.value)


def test_train_rejects_existing_run_folder(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"")
    result = subprocess.run(
        [sys.executable, str(REPO / "training" / "train.py"), "--output-dir", str(tmp_path),
         "train.max_steps=1"],
        capture_output=True, text=True, timeout=120,
        env=dict(os.environ, PYTHONPATH=f"{REPO / 'training'}{os.pathsep}{REPO}"),
    )
    assert result.returncode == 1
    assert "already contains a training run; add --resume" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_ddp_two_processes_and_evaluate(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=f"{REPO / 'training'}{os.pathsep}{REPO}")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_addr", "127.0.0.1", "--master_port", "29731",
               str(REPO / "training" / "train.py"), "--output-dir", str(tmp_path / "ddp"),
               *SMALL, "data.num_train_scenes=8", "data.num_val_scenes=2",
               "train.batch_size=2", "train.max_steps=3", "train.log_every=1"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "step 3/3" in result.stderr
    content = load_checkpoint(tmp_path / "ddp" / "last.pt")
    assert content["step"] == 3

    output = tmp_path / "metrics.json"
    result = subprocess.run([sys.executable, str(REPO / "training" / "evaluate.py"),
                             "--checkpoint", str(tmp_path / "ddp" / "last.pt"),
                             "--output", str(output)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "normals.median" in result.stdout
    metrics = json.loads(output.read_text())
    # Two procedural scenes plus the labelled real frame of the default extra manifest.
    assert metrics["images"] == 3
    assert math.isfinite(metrics["depth.abs_err"])
    assert 0.0 <= metrics["semseg.miou"] <= 1.0
