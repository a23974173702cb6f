"""Procedural surface textures, Lambertian shading and sensor effects for the scenes.

Textures are functions of surface coordinates in metres, so patterns keep their physical
size under perspective. Noise comes from two fixed, tileable noise images that are built once
from a constant seed, so every scene reads the same tables.
"""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

NOISE_SIZE = 256


@lru_cache(maxsize=1)
def _noise_tiles() -> tuple:
    """Return (smooth, fine) tileable noise images with zero mean and unit deviation."""
    rng = np.random.default_rng(20240611)
    freq = np.fft.fftfreq(NOISE_SIZE)
    radius = np.hypot(freq[:, None], freq[None, :])
    tiles = []
    for cutoff in (0.02, 0.12):
        spectrum = np.fft.fft2(rng.standard_normal((NOISE_SIZE, NOISE_SIZE)))
        field = np.real(np.fft.ifft2(spectrum * np.exp(-(radius / cutoff) ** 2)))
        tiles.append(((field - field.mean()) / field.std()).astype(np.float32))
    return tuple(tiles)


def sample_noise(fine: bool, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sample a noise tile at coordinates (a, b) given in tile pixels.

    The smooth tile is interpolated bilinearly. The fine tile changes from one tile pixel to
    the next anyway, so it is read at the nearest pixel to save time.
    """
    tile = _noise_tiles()[1 if fine else 0].ravel()
    mask = NOISE_SIZE - 1
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    if fine:
        index = (a.astype(np.int32) & mask) * NOISE_SIZE + (b.astype(np.int32) & mask)
        return tile[index]
    a0 = np.floor(a)
    b0 = np.floor(b)
    fa = a - a0
    fb = b - b0
    row0 = (a0.astype(np.int32) & mask) * NOISE_SIZE
    row1 = ((a0.astype(np.int32) + 1) & mask) * NOISE_SIZE
    col0 = b0.astype(np.int32) & mask
    col1 = (col0 + 1) & mask
    top = tile[row0 + col0] + (tile[row0 + col1] - tile[row0 + col0]) * fb
    bottom = tile[row1 + col0] + (tile[row1 + col1] - tile[row1 + col0]) * fb
    return top + (bottom - top) * fa


def _hash01(*keys: np.ndarray) -> np.ndarray:
    """Map integer arrays to pseudo-random floats in [0, 1), the same for the same keys."""
    value = np.zeros_like(np.asarray(keys[0]), dtype=np.int64)
    for multiplier, key in zip((73856093, 19349663, 83492791), keys):
        value = value ^ (np.asarray(key, dtype=np.int64) * multiplier)
    value = (value * 2654435761) % 4294967296
    return ((value >> 8) % 65536).astype(np.float32) / np.float32(65536)


@dataclass
class SurfacePatch:
    """Pixels of one surface: face coordinates in metres and normalised to [0, 1] on panels."""

    a: np.ndarray
    b: np.ndarray
    u: np.ndarray
    v: np.ndarray
    front: np.ndarray
    color: np.ndarray
    params: dict


def _scale(patch, factor):
    return patch.color[None, :] * factor[:, None]


def _plaster(patch):
    shade = 1 + 0.05 * sample_noise(False, patch.a * 30, patch.b * 30) \
        + 0.02 * sample_noise(True, patch.a * 200, patch.b * 200)
    return _scale(patch, shade)


def _wallpaper(patch):
    stripe = (np.floor(patch.a / patch.params["stripe_m"]) % 2).astype(np.float32)
    mixed = patch.color[None, :] * (1 - stripe[:, None]) + patch.params["color2"] * stripe[:, None]
    return mixed * (1 + 0.03 * sample_noise(True, patch.a * 150, patch.b * 150))[:, None]


def _planks(patch):
    width = patch.params["plank_m"]
    length = patch.params["length_m"]
    row = np.floor(patch.a / width)
    column = np.floor((patch.b + _hash01(row) * length) / length)
    board = 0.78 + 0.3 * _hash01(row, column)
    grain = 1 + 0.08 * sample_noise(True, patch.a * 400, patch.b * 25)
    gap = np.where((patch.a / width - row) < 0.04, 0.55, 1.0)
    return _scale(patch, board * grain * gap)


def _tiles(patch):
    size = patch.params["tile_m"]
    fa = patch.a / size
    fb = patch.b / size
    grout = ((fa - np.floor(fa)) < 0.025) | ((fb - np.floor(fb)) < 0.025)
    tile = 0.92 + 0.12 * _hash01(np.floor(fa), np.floor(fb))
    shade = np.where(grout, 0.7, tile) * (1 + 0.03 * sample_noise(True, patch.a * 200,
                                                                    patch.b * 200))
    return _scale(patch, shade)


def _carpet(patch):
    shade = 1 + 0.12 * sample_noise(True, patch.a * 900, patch.b * 900) \
        + 0.06 * sample_noise(False, patch.a * 40, patch.b * 40)
    return _scale(patch, shade)


def _wood(patch):
    frequency = patch.params.get("grain_per_m", 25.0)
    warp = sample_noise(False, patch.a * 20, patch.b * 60)
    grain = 0.5 + 0.5 * np.sin(patch.b * frequency + 3.0 * warp + patch.a * 4)
    shade = 0.82 + 0.22 * grain + 0.04 * sample_noise(True, patch.a * 300, patch.b * 300)
    drawers = patch.params.get("drawers")
    if drawers:
        line = ((patch.v * drawers) % 1.0) < 0.02
        shade = np.where(patch.front & line, shade * 0.55, shade)
    return _scale(patch, shade)


def _plain(patch):
    shade = 1 + 0.03 * sample_noise(False, patch.a * 50, patch.b * 50)
    drawers = patch.params.get("drawers")
    if drawers:
        line = ((patch.v * drawers) % 1.0) < 0.02
        shade = np.where(patch.front & line, shade * 0.6, shade)
    return _scale(patch, shade)


def _fabric(patch):
    shade = 1 + 0.07 * sample_noise(True, patch.a * 1500, patch.b * 1500) \
        + 0.05 * sample_noise(False, patch.a * 60, patch.b * 60)
    check = patch.params.get("check_m", 0.0)
    if check:
        cells = (np.floor(patch.a / check) + np.floor(patch.b / check)) % 2
        shade = shade * (1 - 0.18 * cells)
    return _scale(patch, shade)


def _spines(patch):
    """Rows of books: stripes of random colours across the spine axis."""
    seed = patch.params["seed"]
    coordinate = patch.a if patch.params["spine_axis"] == 0 else patch.b
    index = np.floor(coordinate / 0.03 + _hash01(np.full(1, seed))[0] * 7)
    hue = np.stack([_hash01(index, np.full_like(index, seed), np.full_like(index, channel))
                    for channel in range(3)], axis=1)
    color = 0.15 + 0.75 * hue
    edge = ((coordinate / 0.03) % 1.0) < 0.1
    # Top and side faces show the pages: off-white.
    pages = np.where(patch.front[:, None], color, np.array([0.9, 0.88, 0.8]))
    return pages * np.where(edge, 0.6, 1.0)[:, None]


def _frame_mask(patch, border):
    return (patch.u < border) | (patch.u > 1 - border) | (patch.v < border) | \
        (patch.v > 1 - border)


def _blobs(u, v, seed):
    """Return an abstract image made of a background colour and soft colour blobs."""
    rng = np.random.default_rng(seed)
    image = np.broadcast_to(rng.uniform(0.1, 0.9, 3), (len(u), 3)).copy()
    gradient = rng.uniform(-0.3, 0.3)
    image *= (1 + gradient * (v[:, None] - 0.5))
    for _ in range(rng.integers(2, 6)):
        center = rng.uniform(0, 1, 2)
        radius = rng.uniform(0.1, 0.4)
        weight = np.exp(-((u - center[0]) ** 2 + (v - center[1]) ** 2) / radius ** 2)
        image += weight[:, None] * (rng.uniform(0, 1, 3) - image) * rng.uniform(0.5, 1.0)
    return np.clip(image, 0, 1)


def _picture(patch):
    content = _blobs(patch.u, patch.v, patch.params["seed"])
    frame = ~patch.front | _frame_mask(patch, 0.06)
    return np.where(frame[:, None], patch.color[None, :], content)


def _window(patch):
    params = patch.params
    # v grows with height on wall panels, and the glass shows sky above the horizon.
    horizon = params["horizon"]
    sky = params["sky"][None, :] * (0.85 + 0.3 * patch.v[:, None])
    ground = params["ground"][None, :] * (1 + 0.1 * sample_noise(False, patch.u * 80,
                                                                  patch.v * 80))[:, None]
    glass = np.where((patch.v > horizon)[:, None], sky, ground)
    pane_u = (patch.u * params["panes_x"]) % 1.0
    pane_v = (patch.v * params["panes_y"]) % 1.0
    mullion = (pane_u < 0.03) | (pane_u > 0.97) | (pane_v < 0.03) | (pane_v > 0.97)
    frame = ~patch.front | _frame_mask(patch, 0.04) | mullion
    return np.where(frame[:, None], patch.color[None, :], glass)


def _screen(patch):
    bezel = ~patch.front | _frame_mask(patch, 0.03)
    if patch.params["on"]:
        glass = _blobs(patch.u, patch.v, patch.params["seed"])
    else:
        glass = np.array([0.04, 0.045, 0.05]) * (1 + 0.8 * patch.v[:, None])
    return np.where(bezel[:, None], patch.color[None, :], glass)


TEXTURES = {
    "plaster": _plaster, "wallpaper": _wallpaper, "planks": _planks, "tiles": _tiles,
    "carpet": _carpet, "wood": _wood, "plain": _plain, "fabric": _fabric, "spines": _spines,
    "picture": _picture, "window": _window, "screen": _screen,
}


def surface_albedo(texture: str, patch: SurfacePatch) -> tuple:
    """Return (albedo Nx3, emissive N) for a surface patch.

    Emissive pixels (window glass, a switched-on screen) keep their colour under shading.
    """
    albedo = TEXTURES[texture](patch).astype(np.float32)
    if texture == "window":
        emissive = patch.front & ~_frame_mask(patch, 0.04)
    elif texture == "screen" and patch.params["on"]:
        emissive = patch.front & ~_frame_mask(patch, 0.03)
    else:
        emissive = np.zeros(len(albedo), dtype=bool)
    return albedo, emissive


def shade(albedo, emissive, points, normals, lights, ambient):
    """Return 3xHxW radiance from Lambertian point lights plus a hemisphere ambient term.

    albedo, points and normals are 3xHxW float32 in the world frame, emissive is HxW bool.
    """
    # Sky-like ambient: surfaces facing up get a little more light than those facing down.
    hemisphere = np.float32(0.85) + np.float32(0.15) * normals[2]
    irradiance = [np.float32(level) * hemisphere for level in ambient]
    for position, color in lights:
        to_light = [np.float32(position[axis]) - points[axis] for axis in range(3)]
        distance_sq = to_light[0] * to_light[0] + to_light[1] * to_light[1] \
            + to_light[2] * to_light[2]
        cosine = (normals[0] * to_light[0] + normals[1] * to_light[1]
                  + normals[2] * to_light[2]) / np.sqrt(distance_sq)
        # Falloff with distance, softened so that a lamp does not saturate nearby walls.
        weight = np.maximum(cosine, np.float32(0.0)) * (np.float32(3.0)
                                                       / (np.float32(3.0) + distance_sq))
        irradiance = [level + np.float32(tint) * weight for level, tint in
                      zip(irradiance, color)]
    radiance = albedo * np.stack(irradiance)
    return np.where(emissive[None], albedo, radiance)
