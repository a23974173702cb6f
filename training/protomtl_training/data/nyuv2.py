"""NYUv2 in the MTAN layout: root/{train,val}/{image,label,depth,normal}/{i}.npy.

Preprocessed release used by the partially annotated multi-task literature: 795 train and
654 val (test) images of 288 x 384. Image float in [0,1] (HxWx3 or 3xHxW), label 13 classes
with -1 = void, depth in metres with 0 = invalid, normals unit vectors with the all-zero
vector = invalid.
"""

from pathlib import Path

import numpy as np
import torch

from protomtl_ros.network.tasks import IGNORE_INDEX, NYU13_CLASSES

from .errors import DataError

FOLDERS = ("image", "label", "depth", "normal")


class NYUv2(torch.utils.data.Dataset):
    """Raw NYUv2 samples (unnormalised image in [0,1]) at the stored resolution."""

    def __init__(self, root, split: str = "train", normal_signs=(1.0, 1.0, 1.0)):
        self.root = Path(root)
        self.split = split
        if not self.root.is_dir():
            raise FileNotFoundError(f"NYUv2 root not found: {self.root} (set data.root to the "
                                    "folder that contains train/ and val/)")
        split_dir = self.root / split
        for folder in FOLDERS:
            if not (split_dir / folder).is_dir():
                raise FileNotFoundError(f"NYUv2 folder not found: {split_dir / folder} "
                                        f"(expected {split}/{{{','.join(FOLDERS)}}}/N.npy)")

        self.count = len(list((split_dir / "image").glob("*.npy")))
        if self.count == 0:
            raise FileNotFoundError(f"no .npy images in {split_dir / 'image'}")
        for index in range(self.count):
            if not (split_dir / "image" / f"{index}.npy").is_file():
                raise FileNotFoundError(f"NYUv2 image {split_dir / 'image' / f'{index}.npy'} "
                                        f"not found: files must be numbered 0..{self.count - 1}")

        # NOTE: the optical-frame convention of the MTAN normal files has not been checked
        # against a known plane here. data.nyuv2_normal_signs flips axes if it differs.
        self.normal_signs = torch.tensor(normal_signs, dtype=torch.float32).view(3, 1, 1)
        self.source_labelled = torch.ones(3, dtype=torch.bool)

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        image = _channels_first(self._load("image", index), 3, "image", index)
        height, width = image.shape[-2:]

        label = self._load("label", index)
        if label.ndim == 3:
            label = label.reshape(label.shape[-2:]) if 1 in label.shape else label
        label = np.rint(label).astype(np.int64)
        self._check_labels(label, index)
        label[label < 0] = IGNORE_INDEX

        depth = self._load("depth", index).astype(np.float32).reshape(1, height, width)
        normals = _channels_first(self._load("normal", index), 3, "normal", index)

        return {
            "image": torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)),
            "semseg": torch.from_numpy(label),
            "depth": torch.from_numpy(depth),
            "normals": torch.from_numpy(normals.astype(np.float32)) * self.normal_signs,
        }

    def _load(self, folder, index):
        return np.load(self.root / self.split / folder / f"{index}.npy")

    def _check_labels(self, label, index):
        path = self.root / self.split / "label" / f"{index}.npy"
        bad = label[(label < -1) | (label >= len(NYU13_CLASSES))]
        if bad.size:
            raise DataError(f"{path}: label value {int(bad[0])} is outside the class range "
                             f"-1 (void) .. {len(NYU13_CLASSES) - 1}")


def _channels_first(array, channels, name, index):
    if array.ndim == 3 and array.shape[-1] == channels and array.shape[0] != channels:
        return np.moveaxis(array, -1, 0)
    if array.ndim == 3 and array.shape[0] == channels:
        return array
    raise DataError(f"NYUv2 {name} {index}.npy has shape {array.shape}: expected "
                     f"HxWx{channels} or {channels}xHxW")
