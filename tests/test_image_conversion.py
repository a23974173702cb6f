"""Tests of Image <-> numpy conversion and CameraInfo scaling (no ROS graph needed)."""

import sys

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from protomtl_ros.ros.camera_info import scale_camera_info
from protomtl_ros.ros.image_conversion import (
    ACCEPTED_ENCODINGS,
    array_to_image,
    class_ids_to_image,
    depth_to_image,
    image_to_array,
    image_to_rgb,
    normals_to_image,
    rgb_to_image,
)
from protomtl_ros.runtime.errors import InputError

COLOR_ENCODINGS_8 = ("rgb8", "bgr8", "rgba8", "bgra8")
COLOR_ENCODINGS_16 = ("rgb16", "bgr16", "rgba16", "bgra16")
BAYER_PATTERNS = ("rggb", "bggr", "gbrg", "grbg")


def make_scene(height=5, width=7, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def encode_pixels(pixels, encoding, padding=0, bigendian=False):
    """Pack an (H, W, C) uint8 or uint16 array into an Image with ``padding`` bytes per row."""
    height, width = pixels.shape[:2]
    order = ">" if bigendian else "<"
    if pixels.dtype == np.uint16:
        pixels = pixels.astype(order + "u2")
    row_bytes = pixels.reshape(height, -1).view(np.uint8).reshape(height, -1)
    padded = np.concatenate(
        [row_bytes, np.full((height, padding), 0xAB, dtype=np.uint8)], axis=1
    )

    msg = Image()
    msg.height = height
    msg.width = width
    msg.encoding = encoding
    msg.is_bigendian = int(bigendian)
    msg.step = padded.shape[1]
    msg.data = padded.tobytes()
    return msg


def encode_scene(rgb, encoding, padding=0, bigendian=False):
    """Encode an RGB uint8 scene in a colour or mono encoding."""
    wide = encoding.endswith("16")
    channels = rgb.astype(np.uint16) * 257 if wide else rgb
    base = encoding[:-2] if wide else encoding[:-1]
    if base == "rgb":
        pixels = channels
    elif base == "bgr":
        pixels = channels[:, :, ::-1]
    elif base == "rgba":
        alpha = np.full(rgb.shape[:2] + (1,), channels.max(), dtype=channels.dtype)
        pixels = np.concatenate([channels, alpha], axis=2)
    elif base == "bgra":
        alpha = np.zeros(rgb.shape[:2] + (1,), dtype=channels.dtype)
        pixels = np.concatenate([channels[:, :, ::-1], alpha], axis=2)
    elif base == "mono":
        pixels = channels[:, :, :1]
    else:
        raise ValueError(f"no encoder for {encoding}")
    return encode_pixels(np.ascontiguousarray(pixels), encoding, padding, bigendian)


def mosaic(rgb, pattern):
    """Sample an RGB image through a bayer filter named as in ROS (top-left 2x2 block)."""
    index = {"r": 0, "g": 1, "b": 2}
    out = np.zeros(rgb.shape[:2], dtype=rgb.dtype)
    for position, colour in enumerate(pattern):
        row, col = divmod(position, 2)
        out[row::2, col::2] = rgb[row::2, col::2, index[colour]]
    return out[:, :, None]


@pytest.mark.parametrize("encoding", COLOR_ENCODINGS_8 + COLOR_ENCODINGS_16)
def test_color_encodings_give_same_rgb(encoding):
    scene = make_scene()

    rgb = image_to_rgb(encode_scene(scene, encoding))

    assert rgb.dtype == np.uint8
    assert rgb.shape == scene.shape
    assert rgb.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(rgb, scene)


@pytest.mark.parametrize("encoding", ("mono8", "mono16"))
def test_mono_replicated_to_three_channels(encoding):
    scene = make_scene()

    rgb = image_to_rgb(encode_scene(scene, encoding))

    for channel in range(3):
        np.testing.assert_array_equal(rgb[:, :, channel], scene[:, :, 0])


def test_16bit_rounds_to_nearest_8bit():
    values = np.array([[[0, 128, 129], [65535, 32767, 32896]]], dtype=np.uint16)

    rgb = image_to_rgb(encode_pixels(values, "rgb16"))

    # 128/257 = 0.498 -> 0, 129/257 = 0.502 -> 1, 32767/257 = 127.5 -> 127 or 128.
    np.testing.assert_array_equal(rgb[0, 0], [0, 0, 1])
    assert rgb[0, 1, 0] == 255
    assert abs(int(rgb[0, 1, 1]) - 127) <= 1
    assert rgb[0, 1, 2] == 128


@pytest.mark.parametrize("encoding", ("rgb8", "bgra8", "mono8", "rgb16", "bgr16", "mono16"))
@pytest.mark.parametrize("padding", (1, 3, 5, 64))
def test_row_padding_ignored(encoding, padding):
    scene = make_scene(height=4, width=3, seed=padding)
    expected = image_to_rgb(encode_scene(scene, encoding))

    padded = encode_scene(scene, encoding, padding=padding)
    rgb = image_to_rgb(padded)

    assert padded.step == len(padded.data) // padded.height
    np.testing.assert_array_equal(rgb, expected)


@pytest.mark.parametrize("encoding", ("mono16", "rgb16", "bgra16"))
@pytest.mark.parametrize("padding", (0, 1))
def test_bigendian_16bit_matches_littleendian(encoding, padding):
    scene = make_scene(seed=3)

    little = image_to_rgb(encode_scene(scene, encoding, padding, bigendian=False))
    big = image_to_rgb(encode_scene(scene, encoding, padding, bigendian=True))

    np.testing.assert_array_equal(big, little)
    np.testing.assert_array_equal(big[:, :, 0], scene[:, :, 0])


def test_bigendian_mono16_values():
    values = np.array([[0x0100, 0xFF00, 0x8080]], dtype=np.uint16)[:, :, None]

    rgb = image_to_rgb(encode_pixels(values, "mono16", bigendian=True))

    # 0x0100 = 256 -> 1; read as little-endian it would be 1 -> 0.
    np.testing.assert_array_equal(rgb[0, :, 0], [1, 254, 128])


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
@pytest.mark.parametrize("bits", (8, 16))
def test_bayer_flat_colour_recovered(pattern, bits):
    colour = np.array([200, 100, 30], dtype=np.uint16)
    scene = np.broadcast_to(colour, (8, 10, 3))
    if bits == 16:
        scene = scene * 257
    scene = np.ascontiguousarray(scene.astype(np.uint8 if bits == 8 else np.uint16))

    rgb = image_to_rgb(encode_pixels(mosaic(scene, pattern), f"bayer_{pattern}{bits}"))

    assert rgb.shape == (8, 10, 3)
    # Interior pixels have every neighbour a flat-colour demosaic needs.
    np.testing.assert_array_equal(rgb[2:-2, 2:-2], np.broadcast_to(colour, (4, 6, 3)))


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_bayer_odd_padding(pattern):
    scene = np.ascontiguousarray(np.broadcast_to(np.uint8([10, 220, 90]), (6, 6, 3)))
    tight = image_to_rgb(encode_pixels(mosaic(scene, pattern), f"bayer_{pattern}8"))

    padded = image_to_rgb(encode_pixels(mosaic(scene, pattern), f"bayer_{pattern}8", 3))

    np.testing.assert_array_equal(padded, tight)


@pytest.mark.parametrize("encoding", ("16UC1", "32FC1", "16SC1", "64FC1", "8UC3"))
def test_depth_encodings_rejected(encoding):
    msg = encode_pixels(np.zeros((2, 2, 4), np.uint8), encoding)

    with pytest.raises(InputError) as error:
        image_to_rgb(msg)

    message = str(error.value)
    assert f"'{encoding}'" in message
    assert "depth" in message
    assert "rgb8" in message
    assert "bayer_rggb8" in message


@pytest.mark.parametrize("encoding", ("", "yuv9", "RGB8", "jpeg"))
def test_unknown_encodings_rejected(encoding):
    msg = encode_pixels(np.zeros((2, 2, 3), np.uint8), encoding)

    with pytest.raises(InputError) as error:
        image_to_rgb(msg)

    assert f"'{encoding}'" in str(error.value)
    assert ", ".join(ACCEPTED_ENCODINGS) in str(error.value)


def test_truncated_data_rejected():
    msg = encode_scene(make_scene(), "rgb8", padding=2)
    msg.data = msg.data[:-1]

    with pytest.raises(InputError) as error:
        image_to_rgb(msg)

    assert "bytes" in str(error.value)
    assert str(msg.step) in str(error.value)


def test_step_smaller_than_row_rejected():
    msg = encode_scene(make_scene(), "rgb16")
    msg.step = msg.width * 6 - 1

    with pytest.raises(InputError) as error:
        image_to_rgb(msg)

    assert "step" in str(error.value)


@pytest.mark.parametrize("size", ((0, 4), (4, 0), (0, 0)))
def test_empty_image_rejected(size):
    msg = Image()
    msg.height, msg.width = size
    msg.encoding = "rgb8"
    msg.step = msg.width * 3

    with pytest.raises(InputError) as error:
        image_to_rgb(msg)

    assert "empty" in str(error.value)


def test_huge_declared_size_rejected_without_allocation():
    msg = Image()
    msg.height = 2**31
    msg.width = 2**31
    msg.step = 2**32 - 1
    msg.encoding = "rgb8"
    msg.data = b"\x00" * 16

    with pytest.raises(InputError):
        image_to_rgb(msg)


def test_extra_trailing_data_ignored():
    scene = make_scene()
    msg = encode_scene(scene, "rgb8")
    msg.data = bytes(msg.data) + b"\x01\x02\x03"

    np.testing.assert_array_equal(image_to_rgb(msg), scene)


@pytest.mark.parametrize(
    "builder, array, encoding, bytes_per_pixel",
    [
        (depth_to_image, np.array([[1.5, np.nan], [0.25, 9.0]], np.float32), "32FC1", 4),
        (class_ids_to_image, np.array([[0, 12], [3, 4]], np.uint8), "mono8", 1),
        (normals_to_image, np.full((2, 2, 3), 0.5773503, np.float32), "32FC3", 12),
        (rgb_to_image, make_scene(2, 2), "rgb8", 3),
    ],
)
def test_output_builders(builder, array, encoding, bytes_per_pixel):
    header = Header(frame_id="camera_optical")
    header.stamp.sec = 12
    header.stamp.nanosec = 345

    msg = builder(array, header)

    assert msg.encoding == encoding
    assert msg.height == 2
    assert msg.width == 2
    assert msg.step == 2 * bytes_per_pixel
    assert len(msg.data) == msg.step * msg.height
    assert msg.is_bigendian == (1 if sys.byteorder == "big" else 0)
    assert msg.header.frame_id == "camera_optical"
    assert msg.header.stamp.sec == 12
    assert msg.header.stamp.nanosec == 345
    np.testing.assert_array_equal(image_to_array(msg), array)


def test_output_builder_rejects_wrong_dtype():
    with pytest.raises(InputError) as error:
        array_to_image(np.zeros((2, 2), np.float64), "32FC1")

    assert "float64" in str(error.value)


def test_output_builder_rejects_wrong_channels():
    with pytest.raises(InputError):
        array_to_image(np.zeros((2, 2, 3), np.float32), "32FC1")


def test_output_builder_accepts_non_contiguous():
    array = np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2]

    msg = array_to_image(array, "32FC1")

    np.testing.assert_array_equal(image_to_array(msg), array)


def test_image_to_array_reads_bigendian_float():
    values = np.array([[1.0, -2.5]], dtype=">f4")
    msg = Image(height=1, width=2, encoding="32FC1", is_bigendian=1, step=8)
    msg.data = values.tobytes()

    np.testing.assert_array_equal(image_to_array(msg), [[1.0, -2.5]])


def make_camera_info(width=640, height=480):
    info = CameraInfo()
    info.width = width
    info.height = height
    info.k = [500.0, 0.0, 320.0, 0.0, 510.0, 240.0, 0.0, 0.0, 1.0]
    info.p = [500.0, 0.0, 320.0, -25.0, 0.0, 510.0, 240.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.d = [0.1, -0.2, 0.0, 0.0, 0.01]
    info.distortion_model = "plumb_bob"
    info.roi.x_offset = 40
    info.roi.y_offset = 20
    info.roi.width = 320
    info.roi.height = 240
    return info


def test_camera_info_scaled_to_half():
    info = make_camera_info()

    scaled = scale_camera_info(info, 320, 120)

    assert scaled.width == 320
    assert scaled.height == 120
    np.testing.assert_allclose(scaled.k, [250, 0, 160, 0, 127.5, 60, 0, 0, 1])
    np.testing.assert_allclose(scaled.p, [250, 0, 160, -12.5, 0, 127.5, 60, 0, 0, 0, 1, 0])
    assert list(scaled.d) == list(info.d)
    assert scaled.distortion_model == "plumb_bob"
    assert scaled.roi.x_offset == 20
    assert scaled.roi.y_offset == 5
    assert scaled.roi.width == 160
    assert scaled.roi.height == 60
    # The input message is left unchanged.
    assert info.width == 640
    assert info.k[0] == 500.0


def test_camera_info_same_size_unchanged():
    info = make_camera_info()
    header = Header(frame_id="image_frame")

    scaled = scale_camera_info(info, 640, 480, header)

    np.testing.assert_array_equal(scaled.k, info.k)
    np.testing.assert_array_equal(scaled.p, info.p)
    assert scaled.header.frame_id == "image_frame"


def test_camera_info_without_size_rejected():
    with pytest.raises(InputError) as error:
        scale_camera_info(make_camera_info(0, 0), 320, 240)

    assert "0x0" in str(error.value)


def test_camera_info_without_intrinsics_rejected():
    info = make_camera_info()
    info.k = [0.0] * 9

    with pytest.raises(InputError) as error:
        scale_camera_info(info, 320, 240)

    assert "fx=0.0, fy=0.0" in str(error.value)
