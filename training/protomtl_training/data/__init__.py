"""Datasets for multi-task training and evaluation under partial labels.

Every dataset here yields a dict: "image" float [3,H,W] ImageNet-normalised, "semseg" int64
[H,W] (255 void), "depth" float [1,H,W] metres (0 invalid), "normals" float [3,H,W] (all
zero invalid), "valid" {task: bool [H,W]} and "labelled" float [3] in the order semseg,
depth, normals. A task that is not labelled for an image has an all-false valid mask and
void / zero targets, so it never reaches a loss.
"""

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from protomtl_ros.network.tasks import TASKS

from . import transforms
from .errors import DataError  # noqa: F401 - re-exported
from .folder import FolderDataset
from .masks import resolve_mask
from .nyuv2 import NYUv2
from .scenes import ProceduralScenes, to_sample


class MultiTaskDataset(Dataset):
    """Wrap a raw dataset: resize, augment, normalise and apply a partial-label mask.

    Augmentation draws come from a generator seeded by (seed, epoch, index), so they do not
    depend on worker processes or on where a resumed run started. Call set_epoch each epoch.
    """

    def __init__(self, raw: Dataset, height: int, width: int, label_mask=None,
                 augment: bool = False, scale_range=(1.0, 1.5), flip: bool = True,
                 seed: int = 0, cache: bool = True):
        self.raw = raw
        self.height = height
        self.width = width
        self.label_mask = None if label_mask is None else torch.as_tensor(label_mask).bool()
        if self.label_mask is not None and len(self.label_mask) != len(raw):
            raise DataError(f"label mask has {len(self.label_mask)} rows for a dataset of "
                             f"{len(raw)} images")
        self.augment = augment
        self.scale_range = scale_range
        self.flip = flip
        self.seed = seed
        self.epoch = 0
        # Resized raw samples, kept per process: decoding and deriving normals is the slow
        # part, and everything before augmentation is the same every epoch.
        self.cache = {} if cache else None

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def __len__(self):
        return len(self.raw)

    def _load_resized(self, index):
        sample = self.raw[index]
        labelled = torch.as_tensor(sample.get("labelled", torch.ones(len(TASKS)))).bool()
        # Targets that the source marks invalid are cleared before any resampling.
        if "valid" in sample:
            sample = transforms.apply_valid(sample, sample["valid"])
        sample = transforms.resize_sample(sample, self.height, self.width)
        return {key: sample[key] for key in ("image", "semseg", "depth", "normals")} | {
            "labelled": labelled}

    def __getitem__(self, index):
        if self.cache is not None and index in self.cache:
            sample = self.cache[index]
        else:
            sample = self._load_resized(index)
            if self.cache is not None:
                self.cache[index] = sample

        labelled = sample["labelled"]
        if self.label_mask is not None:
            labelled = labelled & self.label_mask[index]
        if self.augment:
            generator = torch.Generator().manual_seed(
                (self.seed * 1_000_003 + self.epoch) * 10_000_019 + index)
            sample = transforms.augment(sample, generator, *self.scale_range, self.flip)

        valid = transforms.valid_masks(sample)
        for task_index, task in enumerate(TASKS):
            valid[task] = valid[task] & labelled[task_index]
        sample = transforms.apply_valid(sample, valid)

        return {
            "image": transforms.normalise_image(sample["image"].float()),
            "semseg": sample["semseg"].long(),
            "depth": sample["depth"].float(),
            "normals": sample["normals"].float(),
            "valid": valid,
            "labelled": labelled.float(),
        }


class SceneSamples(Dataset):
    """Procedural scenes as raw sample dicts (rendered on each access)."""

    def __init__(self, split: str, num_scenes: int, height: int, width: int,
                 depth_holes: bool = True):
        self.scenes = ProceduralScenes(split, num_scenes, height, width,
                                       depth_holes=depth_holes)

    def __len__(self):
        return len(self.scenes)

    def __getitem__(self, index):
        return to_sample(self.scenes[index])


def build_raw_dataset(data_config, split: str, height: int, width: int) -> Dataset:
    """Build the configured raw dataset of one split (without the extra manifest)."""
    if data_config.dataset == "scenes":
        count = data_config.num_train_scenes if split == "train" else data_config.num_val_scenes
        scene_split = "train" if split == "train" else "val"
        return SceneSamples(scene_split, count, height, width, data_config.depth_holes)
    if data_config.dataset == "nyuv2":
        return NYUv2(data_config.root, split, data_config.nyuv2_normal_signs)
    return FolderDataset(data_config.manifest, split)


def build_datasets(data_config, height: int, width: int, seed: int = 0):
    """Return (train, val) MultiTaskDatasets for a DataConfig at the network input size.

    The partial-label setting applies to the main dataset. Frames of data.extra_manifest
    keep the labels their files provide (real frames are already partially labelled).
    """
    train_raw = build_raw_dataset(data_config, data_config.train_split, height, width)
    val_raw = build_raw_dataset(data_config, data_config.val_split, height, width)
    available = available_tasks(train_raw)
    mask = resolve_mask(data_config.labels, len(train_raw), data_config.label_seed, available)

    if data_config.extra_manifest:
        extra_train = FolderDataset(data_config.extra_manifest, data_config.train_split)
        extra_val = FolderDataset(data_config.extra_manifest, data_config.val_split)
        train_raw = ConcatDataset([train_raw, extra_train])
        val_raw = ConcatDataset([val_raw, extra_val])
        mask = np.concatenate([mask, available_tasks(extra_train)])

    train = MultiTaskDataset(train_raw, height, width, label_mask=mask,
                             augment=data_config.augment,
                             scale_range=(data_config.scale_min, data_config.scale_max),
                             flip=data_config.flip, seed=seed)
    val = MultiTaskDataset(val_raw, height, width)
    return train, val


def available_tasks(raw: Dataset) -> np.ndarray:
    """Return bool [N, 3]: the tasks each image of `raw` has labels for (all, for generated
    data)."""
    if isinstance(raw, FolderDataset):
        return np.array([raw.available_tasks(index) for index in range(len(raw))], dtype=bool)
    return np.ones((len(raw), len(TASKS)), dtype=bool)


def label_counts(dataset: MultiTaskDataset) -> dict:
    """Return how many training images are labelled, per task (labels present and kept)."""
    if dataset.label_mask is None:
        return {task: len(dataset) for task in TASKS}
    counts = dataset.label_mask.sum(0).tolist()
    return dict(zip(TASKS, (int(count) for count in counts)))


__all__ = [
    "FolderDataset", "MultiTaskDataset", "NYUv2", "SceneSamples", "build_datasets",
    "build_raw_dataset", "label_counts",
]
