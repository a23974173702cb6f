"""Procedurally rendered indoor scenes with depth, surface normals and NYU 13-class labels.

Each scene is a furnished room ray cast in numpy: a room box, furniture built from boxes,
vertical cylinders and spheres, pictures, windows and TVs on the walls, small objects and
books. The camera uses the NYUv2 Kinect intrinsics scaled to the requested size. A scene is
fully determined by its seed, and the splits draw from disjoint seed ranges.

`python -m protomtl_training.render_scenes` writes a grid of examples or times the renderer.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from protomtl_ros.network.tasks import IGNORE_INDEX, NYU13_PALETTE

from .errors import DataError
from .scene_appearance import SurfacePatch, shade, surface_albedo
from .scene_geometry import (BOX, Camera, intersect_primitive, intersect_room_interior,
                             pixel_ray_slopes, primitive_corners, primitive_normals,
                             scaled_intrinsics, screen_rect, world_rays)
from .scene_layout import Layout, sample_layout
from .scene_sensor import apply_sensor_noise, depth_hole_mask, sample_hole_params

# First seed of each split. A split contains at most SPLIT_SIZE scenes.
SPLIT_SEED_OFFSETS = {"train": 0, "val": 1_000_000, "test": 2_000_000}
SPLIT_SIZE = 1_000_000

# Independent random streams, so that turning depth holes off leaves everything else equal.
_LAYOUT_STREAM, _APPEARANCE_STREAM, _HOLE_STREAM = 0, 1, 2

# Room faces: outward axis of the face's plane and the two in-plane texture coordinates.
_ROOM_FACE_NORMALS = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1],
                               [0, 0, -1]], dtype=np.float32)
_ROOM_FACE_UV_AXES = ((1, 2), (1, 2), (0, 2), (0, 2), (0, 1), (0, 1))
_ROOM_FACES = 6


@dataclass
class Scene:
    """One rendered frame and its ground truth.

    image: HxWx3 uint8 RGB. depth: HxW float32 z-depth in metres, 0 = invalid.
    normals: HxWx3 float32 unit vectors in the camera optical frame (x right, y down,
    z forward) pointing towards the camera, all-zero = invalid. labels: HxW uint8 class ids
    of NYU13_CLASSES, 255 = void. intrinsics: (fx, fy, cx, cy) in pixels.
    """

    image: np.ndarray
    depth: np.ndarray
    normals: np.ndarray
    labels: np.ndarray
    intrinsics: tuple


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream]))


def _cast(layout: Layout, origin, dirs, rects):
    """Return per-pixel z-depth and hit id (0..5 room faces, 6 + i primitive i)."""
    depth, hit_id = intersect_room_interior(origin, dirs, layout.room_size)
    for index, (prim, rect) in enumerate(zip(layout.primitives, rects)):
        if rect is None:
            continue
        row0, row1, col0, col1 = rect
        window = tuple(d[row0:row1, col0:col1] for d in dirs)
        t = intersect_primitive(prim, origin, window)
        depth_view = depth[row0:row1, col0:col1]
        closer = t < depth_view
        depth_view[closer] = t[closer]
        hit_id[row0:row1, col0:col1][closer] = _ROOM_FACES + index
    return depth, hit_id


def _room_patch(layout: Layout, face: int, points: np.ndarray) -> tuple:
    axis_a, axis_b = _ROOM_FACE_UV_AXES[face]
    surface = layout.surfaces[face]
    count = len(points)
    patch = SurfacePatch(a=points[:, axis_a], b=points[:, axis_b], u=np.zeros(count),
                         v=np.zeros(count), front=np.ones(count, dtype=bool),
                         color=surface.color, params=surface.params)
    normal = np.broadcast_to(_ROOM_FACE_NORMALS[face], (count, 3))
    return surface, patch, normal


def _primitive_patch(prim, points: np.ndarray) -> tuple:
    normals, local = primitive_normals(prim, points)
    count = len(points)
    if prim.kind == BOX:
        half = prim.half_size
        axis = np.argmax(np.abs(local) / half, axis=1)
        # In-plane coordinates: (y, z) on x faces, (x, z) on y faces, (x, y) on z faces.
        a = np.where(axis == 0, local[:, 1], local[:, 0])
        b = np.where(axis == 2, local[:, 1], local[:, 2])
        half_a = np.where(axis == 0, half[1], half[0])
        half_b = np.where(axis == 2, half[1], half[2])
        u = a / (2 * half_a) + 0.5
        v = b / (2 * half_b) + 0.5
        # Panels face +y in their own frame, and book rows show their spines there too.
        front = (axis == 1) & (local[:, 1] > 0)
        if prim.texture == "spines" and prim.params["spine_axis"] == 2:
            front = axis != 2
    else:
        a = np.arctan2(local[:, 1], local[:, 0]) * prim.half_size[0]
        b = local[:, 2]
        u = np.zeros(count)
        v = np.zeros(count)
        front = np.ones(count, dtype=bool)
    patch = SurfacePatch(a=a, b=b, u=u, v=v, front=front, color=prim.color, params=prim.params)
    return prim, patch, normals


def _surfaces(layout: Layout, hit_id: np.ndarray, points: tuple):
    """Return labels (HxW), world normals and albedo (3xHxW) and emission (HxW) per pixel.

    Pixels are grouped by hit id with one sort, each group is textured on its own, and the
    results are written back with one scatter per channel.
    """
    height, width = hit_id.shape
    flat_id = hit_id.ravel()
    order = np.argsort(flat_id, kind="stable")
    counts = np.bincount(flat_id, minlength=_ROOM_FACES + len(layout.primitives))
    bounds = np.concatenate([[0], np.cumsum(counts)])
    flat_points = [p.ravel() for p in points]

    label_table = np.array([s.label for s in layout.surfaces]
                           + [p.label for p in layout.primitives], dtype=np.uint8)
    normal_parts, albedo_parts, emissive_parts = [], [], []
    for group, count in enumerate(counts):
        if count == 0:
            continue
        pixels = order[bounds[group]:bounds[group + 1]]
        group_points = np.stack([p[pixels] for p in flat_points], axis=1)
        if group < _ROOM_FACES:
            source, patch, normal = _room_patch(layout, group, group_points)
        else:
            source, patch, normal = _primitive_patch(layout.primitives[group - _ROOM_FACES],
                                                     group_points)
        color, glow = surface_albedo(source.texture, patch)
        normal_parts.append(np.asarray(normal, dtype=np.float32).T)
        albedo_parts.append(color.T)
        emissive_parts.append(glow)

    normals = np.empty((3, height * width), dtype=np.float32)
    albedo = np.empty((3, height * width), dtype=np.float32)
    emissive = np.empty(height * width, dtype=bool)
    normals[:, order] = np.concatenate(normal_parts, axis=1)
    albedo[:, order] = np.concatenate(albedo_parts, axis=1)
    emissive[order] = np.concatenate(emissive_parts)
    labels = label_table[hit_id]
    return (labels, normals.reshape(3, height, width), albedo.reshape(3, height, width),
            emissive.reshape(height, width))


def render_layout(layout: Layout, height: int, width: int, appearance_rng, hole_rng=None):
    """Render a layout, adding depth holes when hole_rng is given."""
    if height < 1 or width < 1:
        raise DataError(f"image size must be at least 1x1 pixels, got {height}x{width}")
    intrinsics = scaled_intrinsics(height, width)
    camera = layout.camera
    rotation = camera.rotation()
    dirs = world_rays(camera, height, width, intrinsics)
    origin = camera.position.astype(np.float32)
    rects = [screen_rect(primitive_corners(prim), camera.position, rotation, intrinsics,
                         height, width) for prim in layout.primitives]

    depth, hit_id = _cast(layout, origin, dirs, rects)
    points = tuple(origin[axis] + depth * dirs[axis] for axis in range(3))
    labels, normals_world, albedo, emissive = _surfaces(layout, hit_id, points)

    radiance = shade(albedo, emissive, points, normals_world, layout.lights, layout.ambient)
    image = apply_sensor_noise(radiance, appearance_rng)

    # Optical-frame normal = R^T n, with R's columns the optical axes in the world frame.
    rotation32 = rotation.astype(np.float32)
    normals = np.stack([rotation32[0, axis] * normals_world[0]
                        + rotation32[1, axis] * normals_world[1]
                        + rotation32[2, axis] * normals_world[2] for axis in range(3)], axis=-1)
    slope_u, slope_v = pixel_ray_slopes(height, width, intrinsics)
    toward_ray = normals[..., 0] * slope_u[None, :] + normals[..., 1] * slope_v[:, None] \
        + normals[..., 2]
    # Outward normals of solids seen from outside already face the camera. Rounding at a
    # corner can pick a face that turns away, so such rare pixels are flipped.
    normals[toward_ray > 0] *= -1
    if hole_rng is not None:
        ray_length = np.sqrt(slope_u[None, :] ** 2 + slope_v[:, None] ** 2 + 1)
        view_cosine = np.abs(toward_ray) / ray_length
        params = sample_hole_params(hole_rng, width)
        holes = depth_hole_mask(depth, view_cosine, labels, params, hole_rng)
        depth = np.where(holes, np.float32(0.0), depth)
    return Scene(image=image, depth=depth.astype(np.float32, copy=False),
                 normals=np.ascontiguousarray(normals, dtype=np.float32), labels=labels,
                 intrinsics=intrinsics)


def scene_layout(seed: int) -> Layout:
    """Return the room, furniture, lights and camera drawn for a seed."""
    return sample_layout(_rng(seed, _LAYOUT_STREAM))


def render_scene(seed: int, height: int, width: int, depth_holes: bool = True) -> Scene:
    """Render the scene of a seed at height x width pixels, byte-identical for the same seed."""
    layout = scene_layout(seed)
    hole_rng = _rng(seed, _HOLE_STREAM) if depth_holes else None
    return render_layout(layout, height, width, _rng(seed, _APPEARANCE_STREAM), hole_rng)


def render_front_view(seed: int, height: int, width: int, furnished: bool = False) -> Scene:
    """Render a seed's room with a level camera looking straight at the far (y = max) wall.

    Without furniture, every pixel is floor, ceiling or wall, which gives known normals.
    """
    layout = scene_layout(seed)
    camera = Camera(position=layout.camera.position, yaw=np.pi / 2, pitch=0.0)
    primitives = layout.primitives if furnished else []
    front = Layout(layout.room_size, layout.surfaces, primitives, camera, layout.lights,
                   layout.ambient)
    return render_layout(front, height, width, _rng(seed, _APPEARANCE_STREAM))


def to_sample(scene: Scene) -> dict:
    """Convert a Scene into training tensors: image in [0, 1] (not normalised) and targets."""
    image = torch.from_numpy(scene.image).permute(2, 0, 1).float() / 255.0
    labels = torch.from_numpy(scene.labels.astype(np.int64))
    depth = torch.from_numpy(scene.depth.copy())[None]
    normals = torch.from_numpy(scene.normals.copy()).permute(2, 0, 1).contiguous()
    return {
        "image": image,
        "semseg": labels,
        "depth": depth,
        "normals": normals,
        "valid": {
            "semseg": labels != IGNORE_INDEX,
            "depth": torch.isfinite(depth[0]) & (depth[0] > 0),
            "normals": normals.norm(dim=0) > 0.5,
        },
    }


class ProceduralScenes(Dataset):
    """A fixed list of procedural scenes of one split, where item i is the raw Scene.

    Scene i of a split uses seed split_offset + first_seed_offset + i.
    """

    def __init__(self, split: str, num_scenes: int, height: int = 288, width: int = 384,
                 depth_holes: bool = True, first_seed_offset: int = 0):
        if split not in SPLIT_SEED_OFFSETS:
            raise DataError(f"unknown split {split!r}: use one of "
                             f"{', '.join(SPLIT_SEED_OFFSETS)}")
        if num_scenes < 0 or first_seed_offset < 0:
            raise DataError(f"num_scenes ({num_scenes}) and first_seed_offset "
                             f"({first_seed_offset}) must not be negative")
        if first_seed_offset + num_scenes > SPLIT_SIZE:
            raise DataError(f"first_seed_offset + num_scenes = {first_seed_offset + num_scenes}"
                             f" exceeds the {SPLIT_SIZE} seeds of a split: lower num_scenes "
                             f"or first_seed_offset")
        if height < 1 or width < 1:
            raise DataError(f"image size must be at least 1x1 pixels, got {height}x{width}")
        self.split = split
        self.num_scenes = num_scenes
        self.height = height
        self.width = width
        self.depth_holes = depth_holes
        self.first_seed = SPLIT_SEED_OFFSETS[split] + first_seed_offset

    def __len__(self) -> int:
        return self.num_scenes

    def seed(self, index: int) -> int:
        """Return the scene seed of item `index`, counting negative indices from the end."""
        if index < 0:
            index += self.num_scenes
        if not 0 <= index < self.num_scenes:
            raise IndexError(f"index {index} out of range for {self.num_scenes} scenes")
        return self.first_seed + index

    def __getitem__(self, index: int) -> Scene:
        return render_scene(self.seed(index), self.height, self.width, self.depth_holes)


def _colorize_depth(depth: np.ndarray, max_depth_m: float = 8.0) -> np.ndarray:
    from matplotlib import colormaps

    colored = colormaps["turbo"](np.clip(depth / max_depth_m, 0, 1))[..., :3]
    colored[depth <= 0] = 0
    return (colored * 255).astype(np.uint8)


def scene_panels(scene: Scene) -> list:
    """Return RGB, depth, label and normal images of a scene as HxWx3 uint8 arrays."""
    palette = np.array(list(NYU13_PALETTE) + [(0, 0, 0)] * (256 - len(NYU13_PALETTE)),
                       dtype=np.uint8)
    normals = ((scene.normals + 1) / 2 * 255).astype(np.uint8)
    normals[np.all(scene.normals == 0, axis=-1)] = 0
    return [scene.image, _colorize_depth(scene.depth), palette[scene.labels], normals]
