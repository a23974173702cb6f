"""Helpers for tests that run the perception node as a separate process and talk to it.

Every process started here keeps DDS on the loopback interface
(ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST), uses the test module's own ROS_DOMAIN_ID and
loads the shipped Fast DDS shared-memory profile.
"""

import os
from pathlib import Path
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

REPO_ROOT = Path(__file__).resolve().parents[1]
FASTDDS_PROFILE = REPO_ROOT / "config" / "fastdds_shm.xml"
SAMPLES = REPO_ROOT / "data" / "samples" / "real"

# Deadlines, not speed checks: a node start imports torch and loads the model, which takes
# several seconds on a busy two-core machine.
START_TIMEOUT_S = 120.0
MESSAGE_TIMEOUT_S = 60.0


def ros_environment(domain_id: int) -> dict:
    """Return os.environ plus the loopback-only DDS settings for ``domain_id``."""
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(FASTDDS_PROFILE)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT / "training"), str(REPO_ROOT), env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    # Unbuffered output, so the log file shows the node's messages as they happen.
    env["PYTHONUNBUFFERED"] = "1"
    env["RCUTILS_LOGGING_BUFFERED_STREAM"] = "0"
    env["OMP_NUM_THREADS"] = "1"
    return env


class NodeProcess:
    """The perception node running as ``python -m protomtl_ros.ros.perception_node``."""

    def __init__(self, domain_id: int, parameters: dict, remappings: dict | None = None):
        command = [sys.executable, "-m", "protomtl_ros.ros.perception_node", "--ros-args"]
        for name, value in parameters.items():
            command += ["-p", f"{name}:={value}"]
        for source, target in (remappings or {}).items():
            command += ["-r", f"{source}:={target}"]

        self._log_file = tempfile.NamedTemporaryFile(
            mode="w+b", prefix="perception_node_", suffix=".log", delete=False
        )
        self.command = command
        self.process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=ros_environment(domain_id),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return Path(self._log_file.name).read_text(errors="replace")

    def wait(self, timeout_s: float = START_TIMEOUT_S) -> int:
        """Wait for the process to exit by itself and return its exit code."""
        return self.process.wait(timeout=timeout_s)

    def stop(self, timeout_s: float = 30.0) -> int:
        """Send SIGINT (Ctrl-C) and return the exit code; kill the process if it hangs."""
        if self.alive():
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def close(self):
        if self.alive():
            self.process.kill()
            self.process.wait()
        self._log_file.close()
        os.unlink(self._log_file.name)


class MessageCollector:
    """Store every message received on one topic and let a test wait for a condition."""

    def __init__(self):
        self.messages = []
        self.subscription = None
        self._condition = threading.Condition()

    def callback(self, msg):
        with self._condition:
            self.messages.append(msg)
            self._condition.notify_all()

    def wait_for(self, predicate, timeout_s: float = MESSAGE_TIMEOUT_S):
        """Return the first stored message for which ``predicate`` holds, or None at timeout."""
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while True:
                for msg in self.messages:
                    if predicate(msg):
                        return msg
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._condition.wait(remaining)

    def clear(self):
        with self._condition:
            self.messages.clear()


class RosClient:
    """An rclpy node in the test process, spun by a background executor thread."""

    def __init__(self, domain_id: int, name: str = "protomtl_test_client"):
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self):
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - the executor stops when the context shuts down.
            pass

    def publisher(self, message_type, topic: str, reliable: bool = True, depth: int = 10):
        reliability = ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT
        qos = QoSProfile(depth=depth, reliability=reliability)
        return self.node.create_publisher(message_type, topic, qos)

    def collect(self, message_type, topic: str, depth: int = 10) -> MessageCollector:
        collector = MessageCollector()
        collector.subscription = self.node.create_subscription(
            message_type, topic, collector.callback, depth
        )
        return collector

    def close(self):
        self.executor.shutdown(timeout_sec=5.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=10.0)


def wait_until(condition, timeout_s: float = START_TIMEOUT_S, poll_s: float = 0.05) -> bool:
    """Poll ``condition`` until it returns true; return False at the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll_s)
    return bool(condition())


def wait_for_node_ready(node_process: NodeProcess, image_publisher, collectors=(),
                        timeout_s: float = START_TIMEOUT_S) -> None:
    """Wait until the node subscribes to ``image_publisher``'s topic and every collector
    has a matched publisher; raise AssertionError with the node's log otherwise."""

    def matched():
        if not node_process.alive():
            return True
        if image_publisher.get_subscription_count() == 0:
            return False
        return all(c.subscription.get_publisher_count() > 0 for c in collectors)

    ready = wait_until(matched, timeout_s)
    if not ready or not node_process.alive():
        raise AssertionError(
            f"perception node did not connect within {timeout_s} s "
            f"(exit code {node_process.process.poll()}); log:\n{node_process.log()}"
        )


def send_until_received(publisher, msg, collector, predicate, attempts: int = 20,
                        interval_s: float = 3.0):
    """Publish ``msg`` until ``collector`` stores a message matching ``predicate``.

    Discovery completes on each side separately, so the first message after a match can
    be lost. Tests therefore send one such warm-up frame before the frames they count.
    """
    for _ in range(attempts):
        publisher.publish(msg)
        received = collector.wait_for(predicate, interval_s)
        if received is not None:
            return received
    return None


def encode_rgb(rgb: np.ndarray, encoding: str = "rgb8", padding: int = 0,
               bigendian: bool = False) -> Image:
    """Encode an RGB uint8 (H, W, 3) array as an Image in a colour, mono or bayer encoding."""
    wide = encoding.endswith("16")
    channels = rgb.astype(np.uint16) * 257 if wide else rgb
    base = encoding[:-2] if wide else encoding[:-1]
    if base == "rgb":
        pixels = channels
    elif base == "bgr":
        pixels = channels[:, :, ::-1]
    elif base in ("rgba", "bgra"):
        ordered = channels if base == "rgba" else channels[:, :, ::-1]
        alpha = np.zeros(rgb.shape[:2] + (1,), dtype=channels.dtype)
        pixels = np.concatenate([ordered, alpha], axis=2)
    elif base == "mono":
        pixels = channels[:, :, :1]
    elif base.startswith("bayer_"):
        pixels = bayer_mosaic(channels, base[len("bayer_"):])
    else:
        raise ValueError(f"no test encoder for encoding '{encoding}'")
    return pack_pixels(np.ascontiguousarray(pixels), encoding, padding, bigendian)


def bayer_mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """Sample an RGB image through a bayer filter named as ROS does (top-left 2x2 block)."""
    index = {"r": 0, "g": 1, "b": 2}
    out = np.zeros(rgb.shape[:2], dtype=rgb.dtype)
    for position, colour in enumerate(pattern):
        row, col = divmod(position, 2)
        out[row::2, col::2] = rgb[row::2, col::2, index[colour]]
    return out[:, :, None]


def pack_pixels(pixels: np.ndarray, encoding: str, padding: int = 0,
                bigendian: bool = False) -> Image:
    """Pack (H, W, C) uint8 or uint16 pixels into an Image with ``padding`` bytes per row."""
    height, width = pixels.shape[:2]
    if pixels.dtype == np.uint16:
        pixels = pixels.astype(">u2" if bigendian else "<u2")
    row_bytes = np.ascontiguousarray(pixels).reshape(height, -1).view(np.uint8)
    padding_bytes = np.full((height, padding), 0xAB, dtype=np.uint8)
    padded = np.concatenate([row_bytes.reshape(height, -1), padding_bytes], axis=1)

    msg = Image()
    msg.height = height
    msg.width = width
    msg.encoding = encoding
    msg.is_bigendian = int(bigendian)
    msg.step = padded.shape[1]
    msg.data = padded.tobytes()
    return msg


def stamp_message(msg, sec: int, nanosec: int = 0, frame_id: str = "camera_optical"):
    msg.header.stamp.sec = sec
    msg.header.stamp.nanosec = nanosec
    msg.header.frame_id = frame_id
    return msg


def has_stamp(sec: int, nanosec: int = 0):
    """Return a predicate matching messages whose header stamp is (sec, nanosec)."""
    return lambda msg: msg.header.stamp.sec == sec and msg.header.stamp.nanosec == nanosec


def camera_info_for(width: int, height: int, fx: float = 500.0, fy: float = 500.0,
                    cx: float | None = None, cy: float | None = None) -> CameraInfo:
    info = CameraInfo()
    info.width = width
    info.height = height
    cx = (width - 1) / 2 if cx is None else cx
    cy = (height - 1) / 2 if cy is None else cy
    info.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    info.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.distortion_model = "plumb_bob"
    info.d = [0.0] * 5
    return info


def diagnostic_values(array_msg, name_prefix: str = "protomtl_perception") -> dict | None:
    """Return the key/value pairs of the node's status in a DiagnosticArray, or None."""
    for status in array_msg.status:
        if status.name.startswith(name_prefix):
            return {pair.key: pair.value for pair in status.values}
    return None
