"""Users' own RGB-D frames listed in a manifest file (YAML or JSON).

Manifest keys (paths are relative to the manifest's folder):

    depth_scale_to_metres: 0.001      # shared default: metres = PNG value * scale
    intrinsics: camera.json           # shared default: a JSON file or {fx, fy, cx, cy,
                                      # width, height}; width/height of the calibration
    label_mapping: nyu13_one_based    # or {source value: class id or 255}; default identity
    num_classes: 13
    frames:
      - name: kitchen_0001
        image: kitchen/rgb_0001.png   # required, any RGB image Pillow reads
        depth: kitchen/depth_0001.png # optional, uint16 PNG (or float .npy in metres)
        depth_scale_to_metres: 0.001  # optional per-frame override
        label: kitchen/seg_0001.png   # optional, single-channel PNG of source label values
        normals: kitchen/n_0001.npy   # optional, HxWx3 float unit vectors (optical frame)
                                      # or a PNG with (n + 1) / 2 * 255
        intrinsics: {fx: 518.9, fy: 519.5, cx: 325.6, cy: 253.7, width: 640, height: 480}
        splits: [train, val]          # default: every split

When a frame has depth and intrinsics but no normal map, normals are derived from depth in
the optical frame (x right, y down, z forward), pointing towards the camera.
"""

import json
import math
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml
from PIL import Image

from protomtl_ros.network.tasks import IGNORE_INDEX

from .errors import DataError

# NYU-13 label PNGs store 0 = unlabelled and classes 1..13.
LABEL_PRESETS = {
    "nyu13_one_based": {0: IGNORE_INDEX, **{value: value - 1 for value in range(1, 14)}},
}

FRAME_KEYS = {"name", "image", "depth", "depth_scale_to_metres", "label", "normals",
              "intrinsics", "splits"}
MANIFEST_KEYS = {"depth_scale_to_metres", "intrinsics", "label_mapping", "num_classes",
                 "frames", "description"}


class FolderDataset(torch.utils.data.Dataset):
    """Raw samples (unnormalised image in [0,1]) of the manifest frames in one split."""

    def __init__(self, manifest, split: str = "train"):
        self.manifest_path = Path(manifest)
        if not self.manifest_path.is_file():
            raise FileNotFoundError(f"dataset manifest not found: {self.manifest_path}")
        self.root = self.manifest_path.parent
        content = _read_manifest(self.manifest_path)

        self.num_classes = int(content.get("num_classes", 13))
        self.label_lut = self._label_lookup(content.get("label_mapping"))
        self.depth_scale = content.get("depth_scale_to_metres")
        self.intrinsics = content.get("intrinsics")
        for frame in content["frames"]:
            self._check_frame_entry(frame)
        self.frames = [frame for frame in content["frames"]
                       if split in frame.get("splits", [split])]
        if not self.frames:
            raise DataError(f"{self.manifest_path}: no frame belongs to split {split!r}")
        self._intrinsics_specs = {}
        for frame in self.frames:
            self._check_frame(frame)

    def __len__(self):
        return len(self.frames)

    def available_tasks(self, index: int) -> list[bool]:
        """Tasks that frame `index` has labels for, from the manifest alone: semseg, depth,
        normals (a normal map, or depth with intrinsics)."""
        frame = self.frames[index]
        has_depth = bool(frame.get("depth"))
        has_intrinsics = frame.get("intrinsics", self.intrinsics) is not None
        return [bool(frame.get("label")), has_depth,
                bool(frame.get("normals")) or (has_depth and has_intrinsics)]

    def __getitem__(self, index):
        frame = self.frames[index]
        image_path = self.root / frame["image"]
        image = _read_rgb(image_path)
        height, width = image.shape[:2]

        semseg = np.full((height, width), IGNORE_INDEX, dtype=np.int64)
        depth = np.zeros((height, width), dtype=np.float32)
        normals = np.zeros((height, width, 3), dtype=np.float32)
        labelled = [False, False, False]

        if frame.get("label"):
            semseg = self._read_label(self.root / frame["label"], (height, width))
            labelled[0] = True
        if frame.get("depth"):
            depth = self._read_depth(frame, (height, width))
            labelled[1] = True

        intrinsics = self._frame_intrinsics(frame, (height, width))
        if frame.get("normals"):
            normals = _read_normals(self.root / frame["normals"], (height, width))
            labelled[2] = True
        elif frame.get("depth") and intrinsics is not None:
            normals = normals_from_depth(depth, *intrinsics)
            labelled[2] = True

        return {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "semseg": torch.from_numpy(semseg),
            "depth": torch.from_numpy(depth[None]),
            "normals": torch.from_numpy(np.ascontiguousarray(normals.transpose(2, 0, 1))),
            "labelled": torch.tensor(labelled),
        }

    def _label_lookup(self, mapping):
        lut = np.full(256, -1, dtype=np.int64)
        if mapping is None:
            lut[:self.num_classes] = np.arange(self.num_classes)
            lut[IGNORE_INDEX] = IGNORE_INDEX
            return lut
        if isinstance(mapping, str):
            if mapping not in LABEL_PRESETS:
                raise DataError(f"{self.manifest_path}: label_mapping {mapping!r} is unknown; "
                                 f"use one of {sorted(LABEL_PRESETS)} or a mapping")
            mapping = LABEL_PRESETS[mapping]
        for source, target in mapping.items():
            source, target = int(source), int(target)
            if not 0 <= source <= 255 or not (0 <= target < self.num_classes
                                              or target == IGNORE_INDEX):
                raise DataError(f"{self.manifest_path}: label_mapping {source}: {target} is "
                                 f"invalid: map 0..255 to 0..{self.num_classes - 1} or 255")
            lut[source] = target
        return lut

    def _check_frame_entry(self, frame):
        """Check the form of one manifest entry: a mapping with an image and known keys."""
        if not isinstance(frame, dict) or not isinstance(frame.get("image"), str):
            raise DataError(f"{self.manifest_path}: every frame must be a mapping with an "
                            f"'image' path, got {frame!r}")
        unknown = sorted(set(frame) - FRAME_KEYS)
        if unknown:
            raise DataError(f"{self.manifest_path}: unknown frame key(s) {unknown}; accepted: "
                             f"{sorted(FRAME_KEYS)}")
        splits = frame.get("splits", [])
        if not isinstance(splits, list) or not all(isinstance(s, str) for s in splits):
            raise DataError(f"{self.manifest_path}: frame {frame['image']}: splits must be a "
                            f"list of split names such as [train, val], got {splits!r}")

    def _check_frame(self, frame):
        """Check that the files of one frame of this split exist and its numbers are usable."""
        for key in ("image", "depth", "label", "normals"):
            if frame.get(key) and not (self.root / frame[key]).is_file():
                raise FileNotFoundError(f"{key} file not found: {self.root / frame[key]} "
                                        f"(listed in {self.manifest_path})")
        if frame.get("depth") and self._depth_scale(frame) is None:
            raise DataError(f"{self.manifest_path}: frame {frame['image']} has depth but no "
                             "depth_scale_to_metres (set it per frame or for the manifest)")
        scale = self._depth_scale(frame)
        if scale is not None and not _is_positive_number(scale):
            raise DataError(f"{self.manifest_path}: frame {frame['image']}: "
                            f"depth_scale_to_metres {scale!r} is invalid: give the metres per "
                            "depth unit as a positive number, such as 0.001 for millimetres")
        self._intrinsics_spec(frame)

    def _depth_scale(self, frame):
        return frame.get("depth_scale_to_metres", self.depth_scale)

    def _read_label(self, path, size):
        with Image.open(path) as handle:
            label = np.array(handle)
        if label.ndim != 2:
            raise DataError(f"label PNG {path} has shape {label.shape}: expected a "
                             "single-channel image of label values")
        if label.shape != size:
            raise DataError(f"label PNG {path} is {label.shape[1]}x{label.shape[0]} but its "
                             f"image is {size[1]}x{size[0]}: labels must match the image size")
        if label.min() < 0 or label.max() > 255:
            raise DataError(f"label PNG {path}: values must lie in 0..255")
        mapped = self.label_lut[label.astype(np.int64)]
        if (mapped < 0).any():
            value = int(label[mapped < 0][0])
            raise DataError(f"label PNG {path}: label value {value} is outside the class "
                             f"range (0..{self.num_classes - 1}, 255 void, or the manifest's "
                             "label_mapping)")
        return mapped

    def _read_depth(self, frame, size):
        path = self.root / frame["depth"]
        if path.suffix.lower() == ".npy":
            depth = np.load(path).astype(np.float32).squeeze()
        else:
            with Image.open(path) as handle:
                raw = np.array(handle)
            if raw.dtype != np.uint16:
                raise DataError(f"depth PNG {path} has dtype {raw.dtype} (mode "
                                 f"{Image.open(path).mode}): expected a 16-bit single-channel "
                                 "PNG of depth units (uint16)")
            depth = raw.astype(np.float32) * float(self._depth_scale(frame))
        if depth.shape != size:
            raise DataError(f"depth {path} is {depth.shape[::-1]} but its image is "
                             f"{size[::-1]}: depth must match the image size")
        depth[~np.isfinite(depth)] = 0.0
        return depth

    def _intrinsics_spec(self, frame) -> dict | None:
        """Return the checked intrinsics of a frame (read from JSON when given as a path)."""
        spec = frame.get("intrinsics", self.intrinsics)
        if spec is None:
            return None
        key = spec if isinstance(spec, str) else id(spec)
        if key in self._intrinsics_specs:
            return self._intrinsics_specs[key]

        where = f"{self.manifest_path}: intrinsics of frame {frame['image']}"
        if isinstance(spec, str):
            path = self.root / spec
            try:
                with open(path) as stream:
                    spec = json.load(stream)
            except FileNotFoundError:
                raise FileNotFoundError(f"{where}: file not found: {path}") from None
            except (OSError, json.JSONDecodeError) as error:
                raise DataError(f"{where}: {path} is not readable JSON: {error}") from None
            where = f"{where} ({path})"
        usage = ("give a mapping with fx, fy, cx, cy in pixels (and the width and height of "
                 "the calibration)")
        if not isinstance(spec, dict):
            raise DataError(f"{where} is {spec!r}: {usage}")
        missing = [name for name in ("fx", "fy", "cx", "cy") if name not in spec]
        if missing:
            raise DataError(f"{where} lack {missing}: {usage}")
        for name in ("fx", "fy", "width", "height"):
            if name in spec and not _is_positive_number(spec[name]):
                raise DataError(f"{where}: {name} {spec[name]!r} is invalid: use a positive "
                                "number")
        for name in ("cx", "cy"):
            if not _is_number(spec[name]):
                raise DataError(f"{where}: {name} {spec[name]!r} is invalid: use a number")
        self._intrinsics_specs[key] = spec
        return spec

    def _frame_intrinsics(self, frame, size):
        spec = self._intrinsics_spec(frame)
        if spec is None:
            return None
        fx, fy, cx, cy = (float(spec[key]) for key in ("fx", "fy", "cx", "cy"))
        # Calibration made at another resolution: scale about the pixel-centre convention.
        sx = size[1] / float(spec.get("width", size[1]))
        sy = size[0] / float(spec.get("height", size[0]))
        return fx * sx, fy * sy, (cx + 0.5) * sx - 0.5, (cy + 0.5) * sy - 0.5


def normals_from_depth(depth: np.ndarray, fx: float, fy: float, cx: float, cy: float,
                       smooth_px: int = 5, max_relative_jump: float = 0.05) -> np.ndarray:
    """Estimate HxWx3 unit normals from metric depth, optical frame, facing the camera.

    Depth is first averaged over valid pixels in a smooth_px box, because sensor depth is
    quantised, and then back-projected. The normal is the cross product of the central
    differences along v and u. Pixels next to a hole or a depth jump larger than
    max_relative_jump per pixel get the all-zero (invalid) normal.
    """
    depth = depth.astype(np.float32)
    valid = (depth > 0).astype(np.float32)
    if smooth_px > 1:
        kernel = (smooth_px, smooth_px)
        weight = cv2.blur(valid, kernel)
        smoothed = cv2.blur(depth * valid, kernel) / np.maximum(weight, 1e-6)
        depth = np.where(valid > 0, smoothed, 0.0).astype(np.float32)

    height, width = depth.shape
    u = (np.arange(width, dtype=np.float32) - cx) / fx
    v = (np.arange(height, dtype=np.float32) - cy) / fy
    points = np.stack([depth * u[None, :], depth * v[:, None], depth], axis=-1)

    du = np.zeros_like(points)
    dv = np.zeros_like(points)
    du[:, 1:-1] = points[:, 2:] - points[:, :-2]
    dv[1:-1] = points[2:] - points[:-2]
    # dv x du points towards -z (the camera) for a fronto-parallel plane.
    normals = np.cross(dv, du)
    length = np.linalg.norm(normals, axis=-1, keepdims=True)
    normals = normals / np.maximum(length, 1e-12)

    ok = valid > 0
    ok[:, 1:-1] &= ok[:, 2:] & ok[:, :-2]
    ok[1:-1] &= ok[2:] & ok[:-2]
    ok[0], ok[-1], ok[:, 0], ok[:, -1] = False, False, False, False
    safe_depth = np.maximum(depth, 1e-6)
    jump_u = np.zeros_like(depth)
    jump_v = np.zeros_like(depth)
    jump_u[:, 1:-1] = np.abs(depth[:, 2:] - depth[:, :-2]) / (2 * safe_depth[:, 1:-1])
    jump_v[1:-1] = np.abs(depth[2:] - depth[:-2]) / (2 * safe_depth[1:-1])
    ok &= (jump_u <= max_relative_jump) & (jump_v <= max_relative_jump)
    ok &= length[..., 0] > 0

    # Orient every normal towards the camera: its dot product with the viewing ray is < 0.
    flip = np.sum(normals * points, axis=-1) > 0
    normals[flip] *= -1.0
    normals[~ok] = 0.0
    return normals.astype(np.float32)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(
        value)


def _is_positive_number(value) -> bool:
    return _is_number(value) and value > 0


def _read_manifest(path):
    with open(path) as stream:
        if path.suffix.lower() == ".json":
            content = json.load(stream)
        else:
            content = yaml.safe_load(stream)
    if not isinstance(content, dict) or not isinstance(content.get("frames"), list):
        raise DataError(f"{path}: a manifest must be a mapping with a 'frames' list")
    unknown = sorted(set(content) - MANIFEST_KEYS)
    if unknown:
        raise DataError(f"{path}: unknown manifest key(s) {unknown}; accepted: "
                         f"{sorted(MANIFEST_KEYS)}")
    return content


def _read_rgb(path):
    try:
        with Image.open(path) as handle:
            return np.asarray(handle.convert("RGB"), dtype=np.float32) / 255.0
    except OSError as error:
        raise DataError(f"image {path} could not be read: {error}") from error


def _read_normals(path, size):
    if path.suffix.lower() == ".npy":
        normals = np.load(path).astype(np.float32)
        if normals.ndim == 3 and normals.shape[0] == 3 and normals.shape[-1] != 3:
            normals = normals.transpose(1, 2, 0)
    else:
        with Image.open(path) as handle:
            raw = np.array(handle.convert("RGB") if handle.mode != "I;16" else handle)
        scale = 65535.0 if raw.dtype == np.uint16 else 255.0
        normals = raw.astype(np.float32) / scale * 2.0 - 1.0
    if normals.shape != (*size, 3):
        raise DataError(f"normal map {path} has shape {normals.shape}: expected "
                         f"{size[0]}x{size[1]}x3 to match its image")
    length = np.linalg.norm(normals, axis=-1, keepdims=True)
    ok = np.abs(length - 1.0) < 0.1
    return np.where(ok, normals / np.maximum(length, 1e-6), 0.0).astype(np.float32)
