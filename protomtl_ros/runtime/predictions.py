"""Per-frame predictions at the input resolution and their colour images."""

from dataclasses import dataclass

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
    table = np.zeros((256, 3), dtype=np.uint8)
    table[: len(palette)] = np.asarray(palette, dtype=np.uint8)
    return table[np.asarray(class_ids, dtype=np.uint8)]


def normals_to_color(normals: np.ndarray) -> np.ndarray:
    """Map unit normals to colours with (n + 1) / 2 * 255; NaN normals become black."""
    scaled = (np.asarray(normals, dtype=np.float32) + 1.0) * 0.5 * 255.0
    scaled = np.nan_to_num(scaled, nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
