"""Camera and depth-sensor effects: colour noise, vignetting and Kinect-like depth holes."""

from dataclasses import dataclass

import numpy as np

from protomtl_ros.network.tasks import NYU13_CLASSES

WINDOW_ID = NYU13_CLASSES.index("window")
TV_ID = NYU13_CLASSES.index("tv")

# Bounds of the random hole parameters, also used by tests to check where holes may appear.
MIN_RANGE_M = 6.0
MAX_RANGE_M = 10.0
EDGE_RELATIVE_JUMP = 0.04
GRAZING_COSINE = 0.2


@dataclass
class HoleParams:
    """Per-scene settings of the simulated depth sensor."""

    max_range_m: float
    edge_band_px: int
    grazing_dropout: float
    drop_windows: bool
    drop_screens: bool


def edge_band_limit_px(width: int) -> int:
    """Return the widest band of holes next to a depth edge for images `width` pixels wide."""
    return max(1, int(round(5 * width / 640)))


def sample_hole_params(rng: np.random.Generator, width: int) -> HoleParams:
    return HoleParams(
        max_range_m=float(rng.uniform(MIN_RANGE_M, MAX_RANGE_M)),
        edge_band_px=int(rng.integers(1, edge_band_limit_px(width) + 1)),
        grazing_dropout=float(rng.uniform(0.2, 0.8)),
        drop_windows=bool(rng.random() < 0.7),
        drop_screens=bool(rng.random() < 0.5),
    )


def depth_edges(depth: np.ndarray, relative_jump: float = EDGE_RELATIVE_JUMP) -> np.ndarray:
    """Mark the far pixel of each pair of 4-neighbours whose depths differ by a large ratio."""
    edges = np.zeros(depth.shape, dtype=bool)
    for axis in (0, 1):
        near = np.swapaxes(depth, 0, axis)
        marks = np.swapaxes(edges, 0, axis)
        first, second = near[:-1], near[1:]
        jump = np.abs(second - first) > relative_jump * np.minimum(first, second)
        marks[:-1] |= jump & (first > second)
        marks[1:] |= jump & (second > first)
    return edges


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow a boolean mask by `radius` pixels in the 4-neighbour sense."""
    grown = mask.copy()
    for _ in range(radius):
        step = grown.copy()
        step[1:] |= grown[:-1]
        step[:-1] |= grown[1:]
        step[:, 1:] |= grown[:, :-1]
        step[:, :-1] |= grown[:, 1:]
        grown = step
    return grown


def depth_hole_mask(depth, view_cosine, labels, params: HoleParams, rng) -> np.ndarray:
    """Return the HxW mask of pixels a Kinect-like sensor would report as invalid.

    view_cosine is the cosine between each pixel's normal and the direction to the camera.
    Holes come from: range beyond max_range_m, a band on the far side of depth edges
    (projector shadow), random dropout on surfaces seen at a grazing angle, and optionally
    the glass of windows and dark screens, which return no infrared pattern.
    """
    holes = depth > params.max_range_m
    holes |= dilate(depth_edges(depth), params.edge_band_px)

    grazing = view_cosine < GRAZING_COSINE
    holes |= grazing & (rng.random(depth.shape, dtype=np.float32) < params.grazing_dropout)

    if params.drop_windows:
        holes |= labels == WINDOW_ID
    if params.drop_screens:
        holes |= labels == TV_ID
    return holes


def apply_sensor_noise(radiance: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Turn 3xHxW linear radiance into an HxWx3 uint8 RGB image with exposure and noise."""
    height, width = radiance.shape[1:]
    exposure = rng.uniform(0.85, 1.25)
    white_balance = rng.uniform(0.92, 1.08, 3).astype(np.float32)
    noise_sigma = np.float32(rng.uniform(0.004, 0.02))

    rows = (np.arange(height, dtype=np.float32) - height / 2) / (height / 2)
    cols = (np.arange(width, dtype=np.float32) - width / 2) / (width / 2)
    vignetting = 1 - np.float32(rng.uniform(0.05, 0.25)) * (
        rows[:, None] ** 2 + cols[None, :] ** 2) / 2

    gain = (np.float32(exposure) * white_balance)[:, None, None] * vignetting[None]
    image = radiance * gain
    image += rng.standard_normal(image.shape, dtype=np.float32) * noise_sigma
    # A mild tone curve keeps highlights (lit windows) from clipping hard.
    image = image / (np.float32(1.0) + np.float32(0.25) * np.abs(image))
    image *= np.float32(1.25 * 255)
    image += np.float32(0.5)
    np.clip(image, 0, 255, out=image)
    return np.ascontiguousarray(image.astype(np.uint8).transpose(1, 2, 0))
