"""Per-frame predictions at the input resolution and their colour images."""

from dataclasses import dataclass

import cv2
import numpy as np

from ..network.tasks import NYU13_PALETTE


@dataclass
class Predictions:
    """Depth, class ids and surface normals of one frame at its input resolution."""

    # H x W float32 metres, NaN where invalid.
    depth: np.ndarray
    # H x W uint8 class ids.
    class_ids: np.ndarray
    # H x W x 3 float32 unit vectors in the camera optical frame, NaN where invalid.
    normals: np.ndarray

    def segmentation_color(self, palette=NYU13_PALETTE) -> np.ndarray:
        """Return the class ids as an H x W x 3 uint8 palette image."""
        return segmentation_to_color(self.class_ids, palette)

    def normals_color(self) -> np.ndarray:
        """Return the normals as an H x W x 3 uint8 image, (n + 1) / 2 * 255."""
        return normals_to_color(self.normals)


def segmentation_to_color(class_ids: np.ndarray, palette=NYU13_PALETTE) -> np.ndarray:
    """Map class ids to palette colours; ids without a palette entry become black."""
    table = np.zeros((256, 1, 3), dtype=np.uint8)
    table[: len(palette), 0] = np.asarray(palette, dtype=np.uint8)
    ids = np.ascontiguousarray(class_ids, dtype=np.uint8)
    if ids.ndim != 2:
        raise ValueError(f"class ids must be an H x W array, got shape {ids.shape}")
    # A table lookup in OpenCV takes a seventh of the time of numpy fancy indexing.
    return cv2.LUT(cv2.merge([ids, ids, ids]), table)


def normals_to_color(normals: np.ndarray) -> np.ndarray:
    """Map unit normals to colours with (n + 1) / 2 * 255; NaN normals become black."""
    normals = np.ascontiguousarray(normals, dtype=np.float32)
    # One saturating multiply-add to uint8, rounding to nearest: +Inf becomes 255 and -Inf 0.
    colors = cv2.addWeighted(normals, 127.5, normals, 0.0, 127.5, dtype=cv2.CV_8U)
    if not np.isfinite(normals).all():
        # OpenCV turns NaN into 255.
        colors[np.isnan(normals)] = 0
    return colors
