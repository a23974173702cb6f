"""Datasets: NYUv2 layout, folder manifests, real sample frames, augmentation, masks."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from protomtl_training.data import MultiTaskDataset
from protomtl_training.data.folder import FolderDataset, normals_from_depth
from protomtl_training.data.masks import generate_mask, read_mask_file, resolve_mask
from protomtl_training.data.nyuv2 import NYUv2
from protomtl_training.data.transforms import horizontal_flip, random_scale_crop

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]
REAL_MANIFEST = REPO / "data" / "samples" / "real" / "manifest.yaml"


def write_nyuv2(root, channels_last=True, count=2, height=8, width=12):
    rng = np.random.default_rng(0)
    for folder in ("image", "label", "depth", "normal"):
        (root / "train" / folder).mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image = rng.random((height, width, 3), dtype=np.float32)
        normal = np.zeros((height, width, 3), dtype=np.float32)
        normal[..., 2] = -1.0
        if not channels_last:
            image, normal = image.transpose(2, 0, 1), normal.transpose(2, 0, 1)
        label = np.full((height, width), 3.0, dtype=np.float32)
        label[0, 0] = -1.0
        depth = np.full((height, width, 1), 2.0, dtype=np.float32)
        depth[1, 1] = 0.0
        np.save(root / "train" / "image" / f"{index}.npy", image)
        np.save(root / "train" / "label" / f"{index}.npy", label)
        np.save(root / "train" / "depth" / f"{index}.npy", depth)
        np.save(root / "train" / "normal" / f"{index}.npy", normal)


@pytest.mark.parametrize("channels_last", [True, False])
def test_nyuv2_layout_and_void(tmp_path, channels_last):
    write_nyuv2(tmp_path, channels_last)
    dataset = NYUv2(tmp_path, "train")
    sample = dataset[0]
    assert len(dataset) == 2
    assert sample["image"].shape == (3, 8, 12)
    assert sample["semseg"][0, 0].item() == 255
    assert sample["semseg"][1, 1].item() == 3
    assert sample["depth"].shape == (1, 8, 12)
    assert sample["normals"][:, 2, 2].tolist() == [0.0, 0.0, -1.0]


def test_nyuv2_normal_signs_flip_axes(tmp_path):
    write_nyuv2(tmp_path)
    sample = NYUv2(tmp_path, "train", normal_signs=(1.0, 1.0, -1.0))[0]
    assert sample["normals"][2, 0, 0].item() == 1.0


def test_nyuv2_missing_root_names_path(tmp_path):
    missing = tmp_path / "no_such_dataset"
    with pytest.raises(FileNotFoundError, match="no_such_dataset"):
        NYUv2(missing, "train")


def test_nyuv2_label_out_of_range(tmp_path):
    write_nyuv2(tmp_path)
    np.save(tmp_path / "train" / "label" / "1.npy", np.full((8, 12), 13.0, dtype=np.float32))
    with pytest.raises(ValueError, match=r"1\.npy.*label value 13"):
        NYUv2(tmp_path, "train")[1]


def write_folder(root, label_size=(6, 8), label_value=2, depth_dtype=np.uint16):
    Image.fromarray(np.full((6, 8, 3), 128, dtype=np.uint8)).save(root / "rgb.png")
    Image.fromarray(np.full(label_size, label_value, dtype=np.uint8)).save(root / "seg.png")
    Image.fromarray(np.full((6, 8), 1500, dtype=np.uint16).astype(depth_dtype)
                    if depth_dtype == np.uint16
                    else np.full((6, 8), 150, dtype=depth_dtype)).save(root / "depth.png")
    manifest = {
        "depth_scale_to_metres": 0.001,
        "label_mapping": "nyu13_one_based",
        "intrinsics": {"fx": 10.0, "fy": 10.0, "cx": 3.5, "cy": 2.5, "width": 8, "height": 6},
        "frames": [{"image": "rgb.png", "label": "seg.png", "depth": "depth.png"}],
    }
    (root / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    return root / "manifest.yaml"


def test_folder_frame_loads(tmp_path):
    sample = FolderDataset(write_folder(tmp_path))[0]
    assert sample["semseg"].unique().tolist() == [1]
    assert sample["depth"][0, 2, 3].item() == pytest.approx(1.5)
    assert sample["labelled"].tolist() == [True, True, True]
    # A fronto-parallel wall faces the camera: (0, 0, -1) away from the border.
    assert sample["normals"][:, 3, 4].tolist() == pytest.approx([0.0, 0.0, -1.0], abs=1e-5)


def test_folder_missing_manifest_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        FolderDataset(tmp_path / "missing.yaml")


def test_folder_label_wrong_size(tmp_path):
    dataset = FolderDataset(write_folder(tmp_path, label_size=(5, 8)))
    with pytest.raises(ValueError, match=r"seg\.png.*must match the image size"):
        dataset[0]


def test_folder_label_out_of_range(tmp_path):
    dataset = FolderDataset(write_folder(tmp_path, label_value=14))
    with pytest.raises(ValueError, match=r"seg\.png: label value 14 is outside"):
        dataset[0]


def test_folder_depth_wrong_dtype(tmp_path):
    dataset = FolderDataset(write_folder(tmp_path, depth_dtype=np.uint8))
    with pytest.raises(ValueError, match=r"depth\.png has dtype uint8"):
        dataset[0]


def rewrite_manifest(path, change):
    manifest = yaml.safe_load(path.read_text())
    change(manifest)
    path.write_text(yaml.safe_dump(manifest))
    return path


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(intrinsics=[10.0, 10.0, 3.5, 2.5]), "intrinsics of frame rgb.png is"),
    (lambda m: m["intrinsics"].update(fx="10f"), "fx '10f' is invalid: use a positive number"),
    (lambda m: m["intrinsics"].update(width=0), "width 0 is invalid: use a positive number"),
    (lambda m: m.update(depth_scale_to_metres="mm"), "depth_scale_to_metres 'mm' is invalid"),
    (lambda m: m["frames"].append("rgb.png"), "every frame must be a mapping"),
    (lambda m: m["frames"][0].update(splits="trainval"), "splits must be a list"),
    (lambda m: m.update(intrinsics="absent.json"), "absent.json"),
])
def test_folder_manifest_mistakes_named(tmp_path, change, message):
    manifest = rewrite_manifest(write_folder(tmp_path), change)
    with pytest.raises((ValueError, FileNotFoundError)) as error:
        FolderDataset(manifest)
    assert message in str(error.value)
    assert "manifest.yaml" in str(error.value)


def test_folder_available_tasks(tmp_path):
    manifest = write_folder(tmp_path)
    rewrite_manifest(manifest, lambda m: m["frames"].append({"image": "rgb.png"}))
    dataset = FolderDataset(manifest)
    assert dataset.available_tasks(0) == [True, True, True]
    assert dataset.available_tasks(1) == [False, False, False]


def test_onelabel_mask_picks_available_tasks():
    available = np.array([[True, False, False], [False, True, True], [False, True, True],
                          [False, False, True], [False, False, False]] * 4)
    mask = generate_mask("onelabel", len(available), seed=0, available=available)
    assert not (mask & ~available).any()
    labelled = mask.sum(1)
    assert (labelled[available.any(1)] == 1).all()
    assert (labelled[~available.any(1)] == 0).all()
    # Rows 1 and 2 of each block may take depth or normals, row 3 only normals: the least-used
    # choice keeps depth and normals close to 6 each.
    counts = mask.sum(0)
    assert counts[0] == 4
    assert counts[1] + counts[2] == 12
    assert abs(int(counts[1]) - int(counts[2])) <= 2


def test_full_mask_keeps_only_available_tasks():
    available = np.array([[True, False, True], [True, True, True]])
    mask = generate_mask("full", 2, seed=0, available=available)
    assert np.array_equal(mask, available)


def test_normals_from_depth_tilted_floor():
    # Camera at height 1 m looking along a horizontal floor: y (down) points at the floor,
    # so the floor normal is (0, -1, 0) in the optical frame.
    height, width, f = 40, 60, 50.0
    cx, cy = (width - 1) / 2, (height - 1) / 2
    v = (np.arange(height) - cy) / f
    depth = np.zeros((height, width), dtype=np.float32)
    below = v > 0.05
    depth[below] = (1.0 / v[below])[:, None]
    normals = normals_from_depth(depth, f, f, cx, cy, smooth_px=1, max_relative_jump=0.5)
    floor = normals[30, 10:50]
    assert np.allclose(floor, [0.0, -1.0, 0.0], atol=1e-3)
    assert np.all(normals[:15] == 0.0)


def test_real_samples_manifest_loads():
    train = FolderDataset(REAL_MANIFEST, "train")
    val = FolderDataset(REAL_MANIFEST, "val")
    assert len(train) == 5
    assert len(val) == 1
    sample = val[0]
    assert sample["labelled"].tolist() == [True, True, True]
    assert sample["semseg"].max().item() == 255
    assert 0 <= sample["semseg"][sample["semseg"] != 255].min().item()
    assert sample["semseg"][sample["semseg"] != 255].max().item() <= 12
    depth = sample["depth"][sample["depth"] > 0]
    assert 1.0 < depth.min().item() < depth.max().item() < 4.2
    # Floor pixels (class 4) have normals pointing up, which is -y in the optical frame.
    normals = sample["normals"]
    floor = (sample["semseg"] == 4) & (normals.abs().sum(0) > 0)
    assert normals[1][floor].mean().item() < -0.7
    tum = train[4]
    assert tum["depth"].max().item() == pytest.approx(46655 / 5000, rel=1e-4)


def make_raw_sample():
    semseg = torch.arange(4 * 6).view(4, 6) % 13
    depth = torch.full((1, 4, 6), 2.0)
    normals = torch.tensor([0.6, 0.0, -0.8]).view(3, 1, 1).expand(3, 4, 6).clone()
    return {"image": torch.rand(3, 4, 6), "semseg": semseg, "depth": depth,
            "normals": normals}


def test_flip_negates_normal_x():
    sample = make_raw_sample()
    flipped = horizontal_flip(sample)
    assert flipped["normals"][:, 0, 0].tolist() == pytest.approx([-0.6, 0.0, -0.8])
    assert flipped["semseg"][0, 0].item() == sample["semseg"][0, -1].item()


def test_zoom_divides_depth_and_keeps_label_ids():
    sample = make_raw_sample()
    zoomed = random_scale_crop(sample, 2.0, 0.5, 0.5)
    assert zoomed["depth"].shape == (1, 4, 6)
    assert torch.allclose(zoomed["depth"], torch.full((1, 4, 6), 1.0))
    assert set(zoomed["semseg"].unique().tolist()) <= set(sample["semseg"].unique().tolist())


def test_unlabelled_task_masked_in_dataset():
    raw = [make_raw_sample()]
    dataset = MultiTaskDataset(raw, 4, 6, label_mask=np.array([[False, True, False]]))
    sample = dataset[0]
    assert not sample["valid"]["semseg"].any()
    assert not sample["valid"]["normals"].any()
    assert sample["valid"]["depth"].all()
    assert (sample["semseg"] == 255).all()
    assert sample["labelled"].tolist() == [0.0, 1.0, 0.0]


def test_onelabel_mask_balanced():
    mask = generate_mask("onelabel", 795, seed=1)
    assert (mask.sum(1) == 1).all()
    assert mask.sum(0).tolist() == [265, 265, 265]
    assert np.array_equal(mask, generate_mask("onelabel", 795, seed=1))


def test_randomlabels_mask_one_or_two():
    mask = generate_mask("randomlabels", 300, seed=2)
    counts = mask.sum(1)
    assert counts.min() == 1
    assert counts.max() == 2
    assert set(counts.tolist()) == {1, 2}


def test_read_legacy_torch_mask(tmp_path):
    weights = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    torch.save({"labels_weights": weights}, tmp_path / "onelabel.pth")
    mask = read_mask_file(tmp_path / "onelabel.pth")
    assert mask.tolist() == [[True, False, False], [False, True, True]]


def test_read_json_and_csv_masks(tmp_path):
    (tmp_path / "mask.json").write_text(json.dumps({"labels": [[0, 1, 0], [1, 1, 1]]}))
    (tmp_path / "mask.csv").write_text("semseg,depth,normals\n0,1,0\n1,1,1\n")
    expected = [[False, True, False], [True, True, True]]
    assert read_mask_file(tmp_path / "mask.json").tolist() == expected
    assert read_mask_file(tmp_path / "mask.csv").tolist() == expected


def test_mask_file_wrong_rows(tmp_path):
    (tmp_path / "mask.csv").write_text("1,0,0\n")
    with pytest.raises(ValueError, match="1 rows but the training set has 3"):
        resolve_mask(str(tmp_path / "mask.csv"), 3, seed=0)


def test_mask_file_bad_values(tmp_path):
    (tmp_path / "mask.json").write_text(json.dumps([[0, 2, 0]]))
    with pytest.raises(ValueError, match="values other than 0 and 1"):
        read_mask_file(tmp_path / "mask.json")
