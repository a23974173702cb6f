"""Robustness tests of the perception node process: start-up failures, QoS, bursts, fuzzing."""

import signal
import time

import numpy as np
import pytest
import torch
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image

from ros_helpers import (
    NodeProcess,
    RosClient,
    diagnostic_values,
    encode_rgb,
    has_stamp,
    send_until_received,
    stamp_message,
    wait_for_node_ready,
    wait_until,
)

try:
    from protomtl_ros.runtime import InferenceEngine
except ImportError as import_error:
    pytest.skip(f"the inference runtime cannot be imported: {import_error}",
                allow_module_level=True)

from protomtl_ros.ros.image_conversion import ACCEPTED_ENCODINGS, image_to_array

pytestmark = [pytest.mark.ros, pytest.mark.slow]

DOMAIN_ID = 62
IMAGE_TOPIC = "/robustness_camera/image_raw"
DEPTH_TOPIC = "/protomtl/depth/image"
FUZZ_MESSAGES = 3000
BURST_FRAMES = 100


def run_until_exit(tmp_path, parameters):
    node = NodeProcess(DOMAIN_ID, parameters)
    try:
        exit_code = node.wait()
        return exit_code, node.log()
    finally:
        node.close()


def test_missing_model_exits_nonzero(tmp_path):
    missing = tmp_path / "no_such_model.pt2"

    exit_code, log = run_until_exit(tmp_path, {"model_path": str(missing)})

    assert exit_code == 1
    assert str(missing) in log
    assert "not found" in log
    assert "Traceback" not in log


def test_corrupt_model_exits_nonzero(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"this is not a model file")

    exit_code, log = run_until_exit(tmp_path, {"model_path": str(corrupt)})

    assert exit_code == 1
    assert str(corrupt) in log
    assert "Traceback" not in log


def test_empty_model_path_exits_nonzero(tmp_path):
    exit_code, log = run_until_exit(tmp_path, {})

    assert exit_code == 1
    assert "model_path" in log
    assert "Traceback" not in log


def test_invalid_reliability_exits_nonzero(tmp_path, tiny_model_path):
    parameters = {"model_path": str(tiny_model_path), "input_reliability": "sometimes"}

    exit_code, log = run_until_exit(tmp_path, parameters)

    assert exit_code == 1
    assert "'sometimes'" in log
    assert "best_effort" in log


def test_negative_cpu_threads_exits_nonzero(tmp_path, tiny_model_path):
    parameters = {"model_path": str(tiny_model_path), "cpu_threads": -2}

    exit_code, log = run_until_exit(tmp_path, parameters)

    assert exit_code == 1
    assert "cpu_threads" in log
    assert "Traceback" not in log


@pytest.mark.skipif(torch.cuda.is_available(), reason="this case needs a machine without CUDA")
def test_cuda_device_without_cuda_exits_nonzero(tmp_path, tiny_model_path):
    parameters = {"model_path": str(tiny_model_path), "device": "cuda"}

    exit_code, log = run_until_exit(tmp_path, parameters)

    assert exit_code == 1
    assert "CUDA is not available here" in log
    assert "Traceback" not in log


class Session:
    """A best-effort node with a deep input queue, and a client that feeds it."""

    def __init__(self, model_path):
        self.client = RosClient(DOMAIN_ID)
        self.depth = self.client.collect(Image, DEPTH_TOPIC)
        self.diagnostics = self.client.collect(DiagnosticArray, "/diagnostics")
        self.reliable_pub = self.client.publisher(Image, IMAGE_TOPIC, reliable=True, depth=200)
        self.best_effort_pub = self.client.publisher(Image, IMAGE_TOPIC, reliable=False)
        self.node = NodeProcess(
            DOMAIN_ID,
            {"model_path": model_path, "input_depth": 200},
            {"image": IMAGE_TOPIC},
        )

    def start(self):
        wait_for_node_ready(self.node, self.reliable_pub, [self.depth, self.diagnostics])
        wait_until(lambda: self.best_effort_pub.get_subscription_count() > 0)
        warm_up = stamp_message(encode_rgb(np.zeros((24, 32, 3), np.uint8)), 1)
        received = send_until_received(self.reliable_pub, warm_up, self.depth, has_stamp(1))
        assert received is not None, f"warm-up frame got no output; log:\n{self.node.log()}"

    def counters(self, predicate):
        """Wait for a diagnostics report whose values satisfy ``predicate``; return them."""
        report = self.diagnostics.wait_for(lambda m: predicate(diagnostic_values(m)))
        assert report is not None, f"no matching diagnostics; log:\n{self.node.log()}"
        return diagnostic_values(report)


@pytest.fixture(scope="module")
def session(tiny_model_path):
    session = Session(str(tiny_model_path))
    try:
        session.start()
        yield session
        assert session.node.alive(), session.node.log()
        assert session.node.stop() == 0, session.node.log()
    finally:
        session.client.close()
        session.node.close()


@pytest.mark.parametrize("reliable", (True, False), ids=("reliable", "best_effort"))
@pytest.mark.parametrize("size", ((480, 640), (1080, 1920)), ids=("640x480", "1920x1080"))
def test_large_frames_arrive(session, size, reliable):
    height, width = size
    publisher = session.reliable_pub if reliable else session.best_effort_pub
    sec = 1000 + width + int(reliable)
    frame = np.random.default_rng(width).integers(0, 256, (height, width, 3), dtype=np.uint8)
    msg = stamp_message(encode_rgb(frame, "rgb8"), sec)

    # Send once and wait: a lost sample shows up as a missing output.
    publisher.publish(msg)
    depth = session.depth.wait_for(has_stamp(sec))

    assert depth is not None, f"{width}x{height} frame never arrived; log:\n{session.node.log()}"
    assert depth.width == width
    assert depth.height == height


def test_burst_keeps_newest_frame(session):
    frame = np.zeros((240, 320, 3), np.uint8)
    before = wait_for_settled_counters(session)
    first_sec = 5000
    last_sec = first_sec + BURST_FRAMES - 1

    for sec in range(first_sec, last_sec + 1):
        session.reliable_pub.publish(stamp_message(encode_rgb(frame, "rgb8"), sec))
    last_output = session.depth.wait_for(has_stamp(last_sec))
    received_target = int(before["frames_received"]) + BURST_FRAMES
    after = session.counters(
        lambda values: int(values["frames_received"]) >= received_target
        and int(values["frames_published"]) + int(values["frames_dropped"])
        + int(values["frames_rejected"]) + int(values["frames_failed"])
        == int(values["frames_received"])
    )

    assert last_output is not None, session.node.log()
    burst_outputs = [m.header.stamp.sec for m in session.depth.messages
                     if first_sec <= m.header.stamp.sec <= last_sec]
    assert burst_outputs == sorted(burst_outputs)
    assert len(set(burst_outputs)) == len(burst_outputs)
    assert len(burst_outputs) < BURST_FRAMES
    dropped = int(after["frames_dropped"]) - int(before["frames_dropped"])
    assert dropped == BURST_FRAMES - len(burst_outputs)


def random_message(rng) -> Image:
    """Return an Image with random encoding, size, step, byte order and data length."""
    encodings = list(ACCEPTED_ENCODINGS) + ["16UC1", "32FC1", "8UC3", "", "yuv422", "\u00e9x"]
    msg = Image()
    msg.encoding = str(rng.choice(encodings))
    msg.height = int(rng.choice([0, 1, 2, 3, 17, 48, 2**32 - 1]))
    msg.width = int(rng.choice([0, 1, 2, 5, 31, 64, 2**31]))
    msg.is_bigendian = int(rng.integers(0, 256))

    row_bytes = min(msg.width, 64) * int(rng.choice([1, 2, 3, 4, 6, 8]))
    step_choices = [row_bytes, row_bytes + int(rng.integers(1, 9)), max(row_bytes - 1, 0), 0,
                    2**32 - 1]
    msg.step = int(rng.choice(step_choices))

    rows = min(msg.height, 48)
    full_length = min(msg.step, 1024) * rows
    length_choices = [full_length, max(full_length - 1, 0), full_length + 7, 0,
                      int(rng.integers(0, 4096))]
    length = int(rng.choice(length_choices))
    msg.data = rng.integers(0, 256, length, dtype=np.uint8).tobytes()
    return msg


def wait_for_settled_counters(session, reports: int = 3, timeout_s: float = 120.0):
    """Return the diagnostics values once frames_received stays the same for ``reports``
    consecutive reports, all received after this call."""
    session.diagnostics.clear()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.5)
        recent = [diagnostic_values(m) for m in session.diagnostics.messages[-reports:]]
        counts = {values["frames_received"] for values in recent}
        if len(recent) == reports and len(counts) == 1:
            return recent[-1]
    raise AssertionError(f"frames_received did not settle; log:\n{session.node.log()}")


def test_fuzzed_messages_then_valid_frame(session, tiny_model_path):
    rng = np.random.default_rng(1234)
    before = wait_for_settled_counters(session)

    for index in range(FUZZ_MESSAGES):
        msg = stamp_message(random_message(rng), 20000 + index)
        session.reliable_pub.publish(msg)
        if index % 10 == 9:
            # Short pauses keep most samples within the best-effort reader's queue.
            time.sleep(0.02)
    after_fuzz = wait_for_settled_counters(session)

    frame = np.random.default_rng(9).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    valid = stamp_message(encode_rgb(frame, "bgr8", padding=3), 90000)
    valid.data = bytes(valid.data)
    depth_msg = send_until_received(session.reliable_pub, valid, session.depth, has_stamp(90000))

    fuzz_received = int(after_fuzz["frames_received"]) - int(before["frames_received"])
    print(f"fuzz: sent {FUZZ_MESSAGES}, node received {fuzz_received}, rejected "
          f"{int(after_fuzz['frames_rejected']) - int(before['frames_rejected'])}")
    assert session.node.alive(), session.node.log()
    assert fuzz_received > FUZZ_MESSAGES // 2
    assert int(after_fuzz["frames_rejected"]) > int(before["frames_rejected"])
    assert depth_msg is not None, session.node.log()
    engine = InferenceEngine.from_file(str(tiny_model_path))
    expected = engine.predict(frame)
    np.testing.assert_allclose(image_to_array(depth_msg), expected.depth, rtol=1e-3,
                               atol=1e-3, equal_nan=True)


def test_reliable_input_reports_incompatible_publisher(tiny_model_path):
    client = RosClient(DOMAIN_ID, name="protomtl_qos_client")
    best_effort_pub = client.publisher(Image, "/qos_camera/image_raw", reliable=False)
    node = NodeProcess(
        DOMAIN_ID,
        {"model_path": str(tiny_model_path), "input_reliability": "reliable"},
        {"image": "/qos_camera/image_raw"},
    )
    try:
        reported = wait_until(lambda: "input_reliability:=best_effort" in node.log())
        subscriptions = best_effort_pub.get_subscription_count()
        log = node.log()
        node.process.send_signal(signal.SIGTERM)
        exit_code = node.wait(30.0)
    finally:
        client.close()
        node.close()

    assert subscriptions == 0
    assert reported, log
    assert log.count("offers QoS incompatible") == 1
    assert "RELIABILITY" in log
    assert exit_code == 0
