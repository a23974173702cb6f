"""Partial-label masks: which of the tasks (semseg, depth, normals) each image is labelled for.

A mask is a bool array [N, 3] whose columns follow protomtl_ros.network.tasks.TASKS.
Settings used in the partially annotated multi-task literature (MTPSL release):
- "onelabel": exactly one task per image, the three tasks equally often;
- "randomlabels": one or two tasks per image, never zero and never all three.
"""

import csv
import json
from pathlib import Path

import numpy as np
import torch

from protomtl_ros.network.tasks import TASKS

from .errors import DataError

SETTINGS = ("full", "onelabel", "randomlabels")


def generate_mask(setting: str, num_images: int, seed: int,
                  available: np.ndarray | None = None) -> np.ndarray:
    """Draw a bool [num_images, 3] mask for a named setting, reproducible from seed.

    `available` (bool [num_images, 3]) marks the tasks each image has labels for, and the
    mask picks only among those. Without it, every image counts as fully labelled.
    """
    rng = np.random.default_rng(seed)
    num_tasks = len(TASKS)
    if available is not None and not np.asarray(available, dtype=bool).all():
        return _mask_within_available(setting, np.asarray(available, dtype=bool), rng)
    if setting == "full":
        return np.ones((num_images, num_tasks), dtype=bool)

    if setting == "onelabel":
        # Cycle through the tasks, then shuffle, so task counts differ by at most one.
        tasks = np.arange(num_images) % num_tasks
        tasks = tasks[rng.permutation(num_images)]
        mask = np.zeros((num_images, num_tasks), dtype=bool)
        mask[np.arange(num_images), tasks] = True
        return mask

    if setting == "randomlabels":
        mask = np.zeros((num_images, num_tasks), dtype=bool)
        for row in mask:
            count = rng.integers(1, num_tasks)
            row[rng.choice(num_tasks, size=count, replace=False)] = True
        return mask

    raise DataError(f"label setting {setting!r} is invalid; accepted: {list(SETTINGS)} or "
                     "the path of a mask file")


def _mask_within_available(setting: str, available: np.ndarray, rng) -> np.ndarray:
    """generate_mask for images labelled for some tasks only."""
    if setting == "full":
        return available.copy()
    if setting not in SETTINGS:
        raise DataError(f"label setting {setting!r} is invalid; accepted: {list(SETTINGS)} or "
                        "the path of a mask file")
    mask = np.zeros_like(available)
    counts = np.zeros(available.shape[1], dtype=np.int64)
    for row in rng.permutation(len(available)):
        tasks = np.flatnonzero(available[row])
        if len(tasks) <= 1:
            mask[row, tasks] = True
        elif setting == "onelabel":
            # The least-used task among those available, ties broken at random, keeps the
            # task counts as even as the labels allow.
            fewest = tasks[counts[tasks] == counts[tasks].min()]
            mask[row, rng.choice(fewest)] = True
        else:
            count = rng.integers(1, len(tasks))
            mask[row, rng.choice(tasks, size=count, replace=False)] = True
        counts += mask[row]
    return mask


def read_mask_file(path) -> np.ndarray:
    """Read a mask file: legacy .pth/.pt dict, .json or .csv; returns bool [N, 3]."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label mask file not found: {path}")

    suffix = path.suffix.lower()
    if suffix in (".pth", ".pt"):
        values = _read_torch_mask(path)
    elif suffix == ".json":
        values = _read_json_mask(path)
    elif suffix == ".csv":
        values = _read_csv_mask(path)
    else:
        raise DataError(f"label mask file {path} has an unsupported extension {suffix!r}: "
                         "use .pth/.pt (dict with 'labels_weights'), .json or .csv")

    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != len(TASKS):
        raise DataError(f"label mask file {path} has shape {list(array.shape)}: expected "
                         f"[N, {len(TASKS)}] with columns {list(TASKS)}")
    if not np.isin(array, (0.0, 1.0)).all():
        raise DataError(f"label mask file {path} contains values other than 0 and 1")
    return array.astype(bool)


def resolve_mask(setting: str, num_images: int, seed: int,
                 available: np.ndarray | None = None) -> np.ndarray:
    """Return the mask of a named setting or mask file, checked against the dataset size.

    The result never marks a task that `available` (the labels the files hold) lacks.
    """
    if setting in SETTINGS:
        return generate_mask(setting, num_images, seed, available)
    mask = read_mask_file(setting)
    if len(mask) != num_images:
        raise DataError(f"label mask file {setting} has {len(mask)} rows but the training "
                         f"set has {num_images} images: use a mask made for this dataset")
    return mask if available is None else mask & np.asarray(available, dtype=bool)


def write_mask_json(mask: np.ndarray, path):
    """Write a mask as JSON {"tasks": [...], "labels": [[0/1, 0/1, 0/1], ...]}."""
    with open(path, "w") as stream:
        json.dump({"tasks": list(TASKS), "labels": mask.astype(int).tolist()}, stream)


def _read_torch_mask(path):
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt or unsafe files
        raise DataError(f"label mask file {path} could not be read as a torch file: "
                         f"{error}") from error
    if not isinstance(content, dict) or "labels_weights" not in content:
        raise DataError(f"label mask file {path} is not a dict with key 'labels_weights' "
                         "(the MTPSL mask format)")
    return torch.as_tensor(content["labels_weights"]).float().numpy()


def _read_json_mask(path):
    with open(path) as stream:
        try:
            content = json.load(stream)
        except json.JSONDecodeError as error:
            raise DataError(f"label mask file {path} is not valid JSON: {error}") from error
    if isinstance(content, dict):
        for key in ("labels", "labels_weights"):
            if key in content:
                return content[key]
        raise DataError(f"label mask file {path}: expected a list of rows or a dict with "
                         "key 'labels'")
    return content


def _read_csv_mask(path):
    with open(path, newline="") as stream:
        rows = [row for row in csv.reader(stream) if row]
    if rows and rows[0][0].strip() in TASKS:
        header = [name.strip() for name in rows[0]]
        if header != list(TASKS):
            raise DataError(f"label mask file {path} has header {header}: expected "
                             f"{list(TASKS)}")
        rows = rows[1:]
    try:
        return [[float(value) for value in row] for row in rows]
    except ValueError as error:
        raise DataError(f"label mask file {path} contains a non-numeric value: "
                         f"{error}") from error
