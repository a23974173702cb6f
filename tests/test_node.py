"""End-to-end tests of the perception node process with real frames and real rclpy."""

import json

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CameraInfo, Image

from ros_helpers import (
    SAMPLES,
    NodeProcess,
    RosClient,
    camera_info_for,
    diagnostic_values,
    encode_rgb,
    has_stamp,
    pack_pixels,
    send_until_received,
    stamp_message,
    wait_for_node_ready,
)

try:
    from protomtl_ros.runtime import InferenceEngine
except ImportError as import_error:
    pytest.skip(f"the inference runtime cannot be imported: {import_error}",
                allow_module_level=True)

from protomtl_ros.network import NYU13_PALETTE
from protomtl_ros.ros.image_conversion import image_to_array

pytestmark = [pytest.mark.ros, pytest.mark.slow]

DOMAIN_ID = 61
IMAGE_TOPIC = "/test_camera/image_raw"
INFO_TOPIC = "/test_camera/camera_info"
MAX_DEPTH_M = 10.0

OUTPUT_TYPES = {
    "/protomtl/depth/image": Image,
    "/protomtl/depth/camera_info": CameraInfo,
    "/protomtl/segmentation/image": Image,
    "/protomtl/segmentation/color": Image,
    "/protomtl/normals/image": Image,
    "/protomtl/normals/color": Image,
}
OUTPUT_ENCODINGS = {
    "/protomtl/depth/image": "32FC1",
    "/protomtl/segmentation/image": "mono8",
    "/protomtl/segmentation/color": "rgb8",
    "/protomtl/normals/image": "32FC3",
    "/protomtl/normals/color": "rgb8",
}


class Session:
    """The node process, a client node, its publishers and one collector per output."""

    def __init__(self, model_path):
        self.client = RosClient(DOMAIN_ID)
        self.collectors = {
            topic: self.client.collect(message_type, topic)
            for topic, message_type in OUTPUT_TYPES.items()
        }
        self.diagnostics = self.client.collect(DiagnosticArray, "/diagnostics")
        self.image_pub = self.client.publisher(Image, IMAGE_TOPIC)
        self.info_pub = self.client.publisher(CameraInfo, INFO_TOPIC)
        self.node = NodeProcess(
            DOMAIN_ID,
            # A deep input queue, so that back-to-back invalid frames all reach the node.
            {"model_path": model_path, "max_depth_m": MAX_DEPTH_M, "input_depth": 10},
            {"image": IMAGE_TOPIC, "camera_info": INFO_TOPIC},
        )
        self.next_sec = 100

    def wait_ready(self):
        wait_for_node_ready(self.node, self.image_pub, list(self.collectors.values()))
        warm_up = stamp_message(encode_rgb(SCENE, "rgb8"), 1, 7)
        received = send_until_received(
            self.image_pub, warm_up, self.collectors["/protomtl/depth/image"], has_stamp(1, 7)
        )
        assert received is not None, f"warm-up frame got no output; log:\n{self.node.log()}"

    def send(self, msg: Image, info: CameraInfo | None = None, frame_id="camera_optical",
             sec: int | None = None, nanosec: int = 7):
        """Publish ``msg`` (and ``info``) with a fresh stamp; return the stamp's seconds."""
        if sec is None:
            sec = self.next_sec
            self.next_sec += 1
        stamp_message(msg, sec, nanosec, frame_id)
        if info is not None:
            stamp_message(info, sec, nanosec, frame_id)
            self.info_pub.publish(info)
        self.image_pub.publish(msg)
        return sec

    def output(self, topic, sec, nanosec=7):
        msg = self.collectors[topic].wait_for(has_stamp(sec, nanosec))
        assert msg is not None, (
            f"no message on {topic} with stamp {sec}.{nanosec}; node log:\n{self.node.log()}"
        )
        return msg

    def close(self):
        exit_code = self.node.stop()
        self.client.close()
        return exit_code


@pytest.fixture(scope="module")
def session(tiny_model_path):
    session = Session(tiny_model_path)
    try:
        session.wait_ready()
        yield session
        assert session.close() == 0, session.node.log()
    finally:
        session.node.close()


@pytest.fixture(scope="module")
def engine(tiny_model_path):
    return InferenceEngine.from_file(str(tiny_model_path), device="cpu", backend="auto")


@pytest.fixture(scope="module")
def nyu_frame():
    bgr = cv2.imread(str(SAMPLES / "nyu_0551" / "rgb.jpg"), cv2.IMREAD_COLOR)
    camera = json.loads((SAMPLES / "nyu_0551" / "camera.json").read_text())
    info = camera_info_for(
        camera["width"], camera["height"], camera["fx"], camera["fy"], camera["cx"], camera["cy"]
    )
    return bgr, info


@pytest.fixture(scope="module")
def nyu_outputs(session, nyu_frame):
    bgr, info = nyu_frame
    image = pack_pixels(bgr, "bgr8")
    sec = session.send(image, info, frame_id="nyu_kinect_rgb_optical")
    outputs = {topic: session.output(topic, sec) for topic in OUTPUT_TYPES}
    return sec, outputs


def test_output_topics_and_types(session, nyu_outputs):
    names_and_types = dict(session.client.node.get_topic_names_and_types())

    for topic, message_type in OUTPUT_TYPES.items():
        expected = f"sensor_msgs/msg/{message_type.__name__}"
        assert topic in names_and_types, f"{topic} missing from {sorted(names_and_types)}"
        assert names_and_types[topic] == [expected]
    assert names_and_types["/diagnostics"] == ["diagnostic_msgs/msg/DiagnosticArray"]


def test_real_frame_headers_copied(nyu_outputs):
    sec, outputs = nyu_outputs

    for topic, msg in outputs.items():
        assert msg.header.stamp.sec == sec, topic
        assert msg.header.stamp.nanosec == 7, topic
        assert msg.header.frame_id == "nyu_kinect_rgb_optical", topic


def test_real_frame_encodings_and_sizes(nyu_frame, nyu_outputs):
    bgr, _ = nyu_frame
    _, outputs = nyu_outputs

    for topic, encoding in OUTPUT_ENCODINGS.items():
        msg = outputs[topic]
        assert msg.encoding == encoding, topic
        assert msg.height == bgr.shape[0], topic
        assert msg.width == bgr.shape[1], topic
        assert len(msg.data) == msg.step * msg.height, topic


def test_real_frame_camera_info_matches_depth(nyu_frame, nyu_outputs):
    _, info = nyu_frame
    _, outputs = nyu_outputs
    depth_info = outputs["/protomtl/depth/camera_info"]
    depth = outputs["/protomtl/depth/image"]

    assert depth_info.width == depth.width
    assert depth_info.height == depth.height
    np.testing.assert_allclose(depth_info.k, info.k)
    np.testing.assert_allclose(depth_info.p, info.p)


def test_real_frame_depth_valid_or_nan(nyu_outputs):
    _, outputs = nyu_outputs
    depth = image_to_array(outputs["/protomtl/depth/image"])
    valid = ~np.isnan(depth)

    assert depth.dtype == np.float32
    assert valid.any()
    assert np.isfinite(depth[valid]).all()
    assert (depth[valid] >= 0.0).all()
    assert (depth[valid] <= MAX_DEPTH_M).all()


def test_real_frame_matches_runtime(engine, nyu_frame, nyu_outputs):
    bgr, _ = nyu_frame
    _, outputs = nyu_outputs
    expected = engine.predict(np.ascontiguousarray(bgr[:, :, ::-1]))
    depth = image_to_array(outputs["/protomtl/depth/image"])
    class_ids = image_to_array(outputs["/protomtl/segmentation/image"])
    normals = image_to_array(outputs["/protomtl/normals/image"])

    expected_depth = np.where(expected.depth > MAX_DEPTH_M, np.nan, expected.depth)
    np.testing.assert_allclose(depth, expected_depth, rtol=1e-3, atol=1e-3, equal_nan=True)
    assert (class_ids == expected.class_ids).mean() > 0.99
    np.testing.assert_allclose(normals, expected.normals, atol=1e-3)


def test_real_frame_unit_normals(nyu_outputs):
    _, outputs = nyu_outputs
    normals = image_to_array(outputs["/protomtl/normals/image"])
    lengths = np.linalg.norm(normals, axis=2)

    assert normals.shape[2] == 3
    assert np.isfinite(normals).all()
    np.testing.assert_allclose(lengths, 1.0, atol=1e-3)


def test_real_frame_colour_images(nyu_outputs):
    _, outputs = nyu_outputs
    class_ids = image_to_array(outputs["/protomtl/segmentation/image"])
    normals = image_to_array(outputs["/protomtl/normals/image"])
    segmentation_color = image_to_array(outputs["/protomtl/segmentation/color"])
    normals_color = image_to_array(outputs["/protomtl/normals/color"])

    assert int(class_ids.max()) < len(NYU13_PALETTE)
    palette = np.array(NYU13_PALETTE, dtype=np.uint8)
    np.testing.assert_array_equal(segmentation_color, palette[class_ids])
    expected = (normals + 1.0) / 2.0 * 255.0
    assert np.abs(normals_color.astype(np.float32) - expected).max() <= 1.0


SCENE = np.random.default_rng(5).integers(0, 256, (24, 32, 3), dtype=np.uint8)
SAME_SCENE_CASES = [
    ("rgb8", 0, False),
    ("bgr8", 0, False),
    ("rgba8", 0, False),
    ("bgra8", 0, False),
    ("rgb8", 5, False),
    ("bgr16", 0, False),
    ("rgb16", 3, True),
    ("bgra16", 1, True),
]


@pytest.fixture(scope="module")
def same_scene_depths(session):
    depths = {}
    for encoding, padding, bigendian in SAME_SCENE_CASES:
        msg = encode_rgb(SCENE, encoding, padding, bigendian)
        sec = session.send(msg)
        depths[(encoding, padding, bigendian)] = image_to_array(
            session.output("/protomtl/depth/image", sec)
        )
    return depths


@pytest.mark.parametrize("case", SAME_SCENE_CASES[1:], ids=str)
def test_colour_encodings_same_output(same_scene_depths, case):
    reference = same_scene_depths[SAME_SCENE_CASES[0]]

    assert same_scene_depths[case].shape == (24, 32)
    np.testing.assert_allclose(same_scene_depths[case], reference, rtol=1e-5, atol=1e-5,
                               equal_nan=True)


@pytest.mark.parametrize("encoding, padding, bigendian", [
    ("mono8", 0, False),
    ("mono16", 3, True),
    ("mono16", 0, False),
    ("bayer_rggb8", 1, False),
    ("bayer_bggr8", 0, False),
    ("bayer_gbrg16", 2, True),
    ("bayer_grbg16", 0, False),
])
def test_mono_and_bayer_through_node(session, encoding, padding, bigendian):
    msg = encode_rgb(SCENE, encoding, padding, bigendian)

    sec = session.send(msg)
    depth = session.output("/protomtl/depth/image", sec)
    class_ids = session.output("/protomtl/segmentation/image", sec)

    assert depth.width == SCENE.shape[1]
    assert depth.height == SCENE.shape[0]
    assert int(image_to_array(class_ids).max()) < len(NYU13_PALETTE)


def test_mono16_bigendian_matches_mono8(session):
    gray = np.repeat(SCENE[:, :, :1], 3, axis=2)
    sec_8 = session.send(encode_rgb(gray, "mono8"))
    depth_8 = image_to_array(session.output("/protomtl/depth/image", sec_8))
    sec_16 = session.send(encode_rgb(gray, "mono16", padding=1, bigendian=True))
    depth_16 = image_to_array(session.output("/protomtl/depth/image", sec_16))

    np.testing.assert_allclose(depth_16, depth_8, rtol=1e-5, atol=1e-5, equal_nan=True)


def test_zero_stamp_and_empty_frame_id(session):
    msg = encode_rgb(SCENE, "rgb8")

    session.send(msg, frame_id="", sec=0, nanosec=0)
    depth = session.collectors["/protomtl/depth/image"].wait_for(
        lambda m: has_stamp(0, 0)(m) and m.header.frame_id == ""
    )

    assert depth is not None, session.node.log()
    log = session.node.log()
    assert log.count("zero stamp") == 1
    assert log.count("empty frame_id") == 1


def test_rejected_encodings_counted(session):
    before = session.diagnostics.messages[-1] if session.diagnostics.messages else None
    rejected_before = int(diagnostic_values(before)["frames_rejected"]) if before else 0
    bad_messages = [
        pack_pixels(np.zeros((4, 4, 2), np.uint8), "16UC1"),
        pack_pixels(np.zeros((4, 4, 4), np.uint8), "32FC1"),
        pack_pixels(np.zeros((4, 4, 3), np.uint8), "yuv_unknown"),
    ]
    truncated = encode_rgb(SCENE, "rgb8")
    truncated.data = truncated.data[:-1]
    bad_messages.append(truncated)

    for msg in bad_messages:
        session.send(msg)
    expected = rejected_before + len(bad_messages)
    report = session.diagnostics.wait_for(
        lambda m: int(diagnostic_values(m)["frames_rejected"]) >= expected
    )

    assert report is not None, session.node.log()
    values = diagnostic_values(report)
    assert int(values["frames_rejected"]) == expected
    assert values["backend"] != ""
    log = session.node.log()
    assert "'16UC1' is a depth or raw-matrix encoding" in log


def test_diagnostics_fields(session, nyu_outputs):
    report = session.diagnostics.wait_for(
        lambda m: int(diagnostic_values(m)["frames_published"]) >= 1
    )

    assert report is not None
    values = diagnostic_values(report)
    for key in ("input_rate_hz", "output_rate_hz", "inference_time_ms", "forward_time_ms",
                "frames_received", "frames_published", "frames_dropped", "frames_rejected",
                "frames_failed", "backend", "device"):
        assert key in values, key
    assert float(values["inference_time_ms"]) > 0.0
    # The forward pass is a part of the inference time.
    assert 0.0 < float(values["forward_time_mean_ms"]) <= float(values["inference_time_mean_ms"])
    assert values["device"] == "cpu"
