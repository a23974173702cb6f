"""Tests of the procedural indoor scene renderer: geometry, labels, determinism, splits."""

import warnings

import numpy as np
import pytest
import torch

from protomtl_ros.network.tasks import IGNORE_INDEX, NYU13_CLASSES
from protomtl_training import render_scenes
from protomtl_training.data import scenes
from protomtl_training.data.scene_geometry import intersect_room_interior
from protomtl_training.data.scene_sensor import (GRAZING_COSINE, MIN_RANGE_M, TV_ID,
                                                 WINDOW_ID, depth_edges, dilate,
                                                 edge_band_limit_px)
from protomtl_training.data.scenes import (ProceduralScenes, render_front_view, render_scene,
                                           scene_layout, to_sample)

FLOOR_ID = NYU13_CLASSES.index("floor")
WALL_ID = NYU13_CLASSES.index("wall")


def _backproject(depth, intrinsics):
    fx, fy, cx, cy = intrinsics
    height, width = depth.shape
    u = (np.arange(width) - cx) / fx
    v = (np.arange(height) - cy) / fy
    return np.stack([depth * u[None, :], depth * v[:, None], depth], axis=-1)


def _normals_from_depth(depth, intrinsics):
    """Central-difference normals of the back-projected depth, oriented towards the camera."""
    points = _backproject(depth.astype(np.float64), intrinsics)
    along_u = points[1:-1, 2:] - points[1:-1, :-2]
    along_v = points[2:, 1:-1] - points[:-2, 1:-1]
    # u runs right and v runs down, so u x v points away from the camera.
    normals = -np.cross(along_u, along_v)
    return normals / np.linalg.norm(normals, axis=-1, keepdims=True)


def _planar_interior(depth, labels):
    """Inner pixels whose 3x3 neighbourhood lies on one plane with one label."""
    inverse = 1.0 / depth.astype(np.float64)
    center = inverse[1:-1, 1:-1]
    # 1/z is affine in pixel coordinates on a plane, so its second differences vanish there.
    flat_u = np.abs(inverse[1:-1, 2:] + inverse[1:-1, :-2] - 2 * center) < 1e-4 * center
    flat_v = np.abs(inverse[2:, 1:-1] + inverse[:-2, 1:-1] - 2 * center) < 1e-4 * center
    same_label = np.ones_like(flat_u)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            shifted = labels[1 + dr:labels.shape[0] - 1 + dr, 1 + dc:labels.shape[1] - 1 + dc]
            same_label &= shifted == labels[1:-1, 1:-1]
    return flat_u & flat_v & same_label


def test_scene_shapes_and_types():
    scene = render_scene(3, 60, 80)

    assert scene.image.shape == (60, 80, 3)
    assert scene.image.dtype == np.uint8
    assert scene.depth.shape == (60, 80)
    assert scene.depth.dtype == np.float32
    assert scene.normals.shape == (60, 80, 3)
    assert scene.normals.dtype == np.float32
    assert scene.labels.shape == (60, 80)
    assert scene.labels.dtype == np.uint8
    assert np.all((scene.labels < len(NYU13_CLASSES)) | (scene.labels == IGNORE_INDEX))


def test_intrinsics_scale_with_size():
    full = render_scene(0, 480, 640, depth_holes=False).intrinsics
    half = render_scene(0, 240, 320, depth_holes=False).intrinsics

    assert full[:2] == pytest.approx((518.858, 519.470))
    assert full[2:] == pytest.approx((325.582, 253.736))
    assert half[0] == pytest.approx(518.858 / 2)
    assert half[1] == pytest.approx(519.470 / 2)
    assert half[2] == pytest.approx((325.582 + 0.5) / 2 - 0.5)
    assert half[3] == pytest.approx((253.736 + 0.5) / 2 - 0.5)


def test_normals_are_unit_and_face_camera():
    scene = render_scene(11, 96, 128, depth_holes=False)
    fx, fy, cx, cy = scene.intrinsics
    rays = _backproject(np.ones((96, 128)), scene.intrinsics)

    lengths = np.linalg.norm(scene.normals, axis=-1)
    facing = np.einsum("hwi,hwi->hw", scene.normals, rays)

    assert np.allclose(lengths, 1.0, atol=1e-4)
    assert np.all(facing <= 1e-6)


@pytest.mark.parametrize("seed", [0, 5, 9, 17])
def test_normals_match_depth_gradients(seed):
    scene = render_scene(seed, 120, 160, depth_holes=False)
    from_depth = _normals_from_depth(scene.depth, scene.intrinsics)
    interior = _planar_interior(scene.depth, scene.labels)
    rendered = scene.normals[1:-1, 1:-1]

    cosine = np.clip(np.sum(from_depth * rendered, axis=-1), -1, 1)
    angles = np.degrees(np.arccos(cosine[interior]))

    assert interior.mean() > 0.5
    assert np.median(angles) < 2.0
    assert np.percentile(angles, 90) < 5.0


def test_floor_normal_points_up():
    for seed in range(8):
        scene = render_scene(seed, 60, 80, depth_holes=False)
        floor = scene.labels == FLOOR_ID
        if not floor.any():
            continue
        # Camera pitch stays within about 29 degrees of level, so "up" keeps y < -0.85.
        assert np.all(scene.normals[floor][:, 1] < -0.85), f"seed {seed}"


def test_level_camera_sees_known_planes():
    seed = 4
    layout = scene_layout(seed)
    scene = render_front_view(seed, 60, 80)
    wall_distance = layout.room_size[1] - layout.camera.position[1]
    center_label = scene.labels[30, 40]
    front_wall = (scene.labels == WALL_ID) & np.isclose(scene.normals[..., 2], -1, atol=1e-5)

    assert center_label == WALL_ID
    assert np.allclose(scene.normals[30, 40], (0, 0, -1), atol=1e-5)
    assert front_wall.sum() > 0.3 * front_wall.size
    # A fronto-parallel plane has the same z-depth at every pixel.
    assert np.allclose(scene.depth[front_wall], wall_distance, rtol=1e-4)


def test_level_camera_floor_normal():
    floors_seen = 0
    for seed in range(10):
        scene = render_front_view(seed, 60, 80, furnished=True)
        floor = scene.labels == FLOOR_ID
        if floor.any():
            floors_seen += 1
            assert np.allclose(scene.normals[floor], (0, -1, 0), atol=1e-5), f"seed {seed}"
    assert floors_seen >= 3


def test_every_class_appears():
    seen = set()
    for seed in range(300):
        seen.update(np.unique(render_scene(seed, 60, 80, depth_holes=False).labels).tolist())
        if len(seen) == len(NYU13_CLASSES):
            break

    missing = [NYU13_CLASSES[i] for i in range(len(NYU13_CLASSES)) if i not in seen]
    assert missing == []
    assert IGNORE_INDEX not in seen


def test_same_seed_same_bytes():
    first = render_scene(42, 72, 96)
    second = render_scene(42, 72, 96)

    assert first.image.tobytes() == second.image.tobytes()
    assert first.depth.tobytes() == second.depth.tobytes()
    assert first.normals.tobytes() == second.normals.tobytes()
    assert first.labels.tobytes() == second.labels.tobytes()


def test_splits_use_disjoint_seeds():
    train = ProceduralScenes("train", 5, 48, 64)
    val = ProceduralScenes("val", 5, 48, 64)
    test = ProceduralScenes("test", 5, 48, 64)
    train_seeds = {train.seed(i) for i in range(5)}
    val_seeds = {val.seed(i) for i in range(5)}
    test_seeds = {test.seed(i) for i in range(5)}

    assert not train_seeds & val_seeds
    assert not train_seeds & test_seeds
    assert not val_seeds & test_seeds
    assert train[0].image.tobytes() != val[0].image.tobytes()
    assert val[0].image.tobytes() != test[0].image.tobytes()


def test_dataset_rejects_bad_arguments():
    with pytest.raises(ValueError, match="train, val, test"):
        ProceduralScenes("validation", 3)
    with pytest.raises(ValueError, match="exceeds"):
        ProceduralScenes("train", 10, first_seed_offset=999_995)
    with pytest.raises(ValueError, match="must not be negative"):
        ProceduralScenes("train", -1)
    with pytest.raises(IndexError):
        ProceduralScenes("train", 3, 24, 32)[3]


def test_dataset_items_follow_offset():
    dataset = ProceduralScenes("val", 4, 32, 40, depth_holes=False, first_seed_offset=7)
    item = dataset[-1]
    direct = render_scene(1_000_010, 32, 40, depth_holes=False)

    assert len(dataset) == 4
    assert dataset.seed(0) == 1_000_007
    assert item.image.tobytes() == direct.image.tobytes()


def test_depth_holes_only_where_expected():
    holes_seen = 0
    for seed in range(12):
        with_holes = render_scene(seed, 96, 128, depth_holes=True)
        clean = render_scene(seed, 96, 128, depth_holes=False)
        holes = with_holes.depth == 0
        rays = _backproject(np.ones(clean.depth.shape), clean.intrinsics)
        view_cosine = -np.sum(clean.normals * rays, axis=-1) / np.linalg.norm(rays, axis=-1)
        allowed = (clean.depth > MIN_RANGE_M) \
            | dilate(depth_edges(clean.depth), edge_band_limit_px(128)) \
            | (view_cosine < GRAZING_COSINE) \
            | np.isin(clean.labels, [WINDOW_ID, TV_ID])

        assert np.all(clean.depth > 0), f"seed {seed}"
        assert np.array_equal(with_holes.depth[~holes], clean.depth[~holes]), f"seed {seed}"
        assert not np.any(holes & ~allowed), f"seed {seed}"
        assert with_holes.image.tobytes() == clean.image.tobytes(), f"seed {seed}"
        assert with_holes.labels.tobytes() == clean.labels.tobytes(), f"seed {seed}"
        holes_seen += int(holes.sum())
    assert holes_seen > 0


def test_to_sample_tensors():
    scene = render_scene(8, 48, 64)
    sample = to_sample(scene)

    assert sample["image"].shape == (3, 48, 64)
    assert sample["image"].dtype == torch.float32
    assert 0.0 <= sample["image"].min() <= sample["image"].max() <= 1.0
    assert sample["semseg"].dtype == torch.int64
    assert sample["semseg"].shape == (48, 64)
    assert sample["depth"].shape == (1, 48, 64)
    assert sample["normals"].shape == (3, 48, 64)
    assert set(sample["valid"]) == {"semseg", "depth", "normals"}
    assert torch.equal(sample["valid"]["depth"], torch.from_numpy(scene.depth > 0))
    assert sample["valid"]["semseg"].dtype == torch.bool
    assert bool(sample["valid"]["normals"].all())
    assert torch.allclose(sample["normals"][:, 5, 7], torch.from_numpy(scene.normals[5, 7]))


def test_room_exit_with_axis_parallel_rays():
    # Rays with an exactly zero component must not hit the plane behind them.
    dirs = tuple(np.array(values, dtype=np.float32) for values in
                 ([0.0, 1.0, -1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]))
    t, face = intersect_room_interior(np.array([1.0, 1.0, 1.0]), dirs, np.array([4.0, 5.0, 3.0]))

    assert t.tolist() == pytest.approx([4.0, 3.0, 1.0])
    assert face.tolist() == [3, 1, 0]


def test_full_size_scene_is_finite():
    # Seed 1_000_013 looks along a ray with an exactly zero y component at 288x384.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scene = render_scene(1_000_013, 288, 384)

    assert np.all(np.isfinite(scene.depth))
    assert np.all(scene.depth >= 0)


def test_render_rejects_empty_size():
    with pytest.raises(ValueError, match="0x10"):
        render_scene(0, 0, 10)


def test_grid_command_writes_png(tmp_path):
    from PIL import Image

    output = tmp_path / "grid.png"
    render_scenes.main(["--output", str(output), "--count", "2", "--height", "48",
                        "--width", "64"])
    grid = Image.open(output)

    assert grid.size[0] > 4 * 64
    assert grid.size[1] > 2 * 48
