"""Play the bundled real RGB-D frames through the perception node and save what comes back.

Starts `perception_node` as its own process (real rclpy, DDS on the loopback interface).
Then it publishes every frame under data/samples/real/ with camera_info as a camera stream
at a steady rate, which drops only while the node is still busy with the previous frame. It
subscribes to the six /protomtl/* topics as any other node would. The output folder receives
one PNG panel per frame and summary.json.

    make demo                     # sets up .venv, then runs this script
    python scripts/demo.py --output-dir demo_output --rate-hz 1 --loops 2
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image as PilImage

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "samples" / "real"
DEFAULT_MODEL = REPO / "models" / "protomtl_tiny_demo.pt2"
OUTPUT_TOPICS = (
    "/protomtl/depth/image",
    "/protomtl/depth/camera_info",
    "/protomtl/segmentation/image",
    "/protomtl/segmentation/color",
    "/protomtl/normals/image",
    "/protomtl/normals/color",
)

# TUM RGB-D freiburg1 colour intrinsics, from the TUM RGB-D benchmark's camera calibration
# page. The Open3D copy of the TUM frame ships without them.
TUM_INTRINSICS = {"fx": 517.3, "fy": 516.5, "cx": 318.6, "cy": 255.3}


@dataclass
class Frame:
    """One camera frame with the pinhole intrinsics of its own resolution."""

    name: str
    rgb: np.ndarray
    fx: float
    fy: float
    cx: float
    cy: float


@dataclass
class Outputs:
    """Messages received for one published frame, keyed by topic."""

    sent_s: float
    messages: dict = field(default_factory=dict)
    arrival_s: dict = field(default_factory=dict)


def load_frames():
    """Read every RGB frame under data/samples/real with its intrinsics."""
    nyu = json.loads((SAMPLES / "nyu_0551" / "camera.json").read_text())
    frames = [Frame("nyu_0551", _read_rgb(SAMPLES / "nyu_0551" / "rgb.jpg"),
                    nyu["fx"], nyu["fy"], nyu["cx"], nyu["cy"])]
    for path in sorted((SAMPLES / "nyu_raw").glob("rgb_*.jpg")):
        frames.append(Frame("nyu_raw_" + path.stem[4:], _read_rgb(path),
                            nyu["fx"], nyu["fy"], nyu["cx"], nyu["cy"]))

    # The small NYU frame is the 640x480 frame downscaled by 4, so its intrinsics scale too.
    frames.append(Frame("nyu_raw_small", _read_rgb(SAMPLES / "nyu_raw_small" / "rgb.jpg"),
                        nyu["fx"] / 4, nyu["fy"] / 4, nyu["cx"] / 4, nyu["cy"] / 4))
    frames.append(Frame("tum", _read_rgb(SAMPLES / "tum" / "rgb.png"), **TUM_INTRINSICS))
    return frames


def _read_rgb(path):
    with PilImage.open(path) as image:
        return np.asarray(image.convert("RGB"))


def ros_environment(domain_id):
    """Return the environment every ROS process of the demo runs with."""
    env = dict(os.environ)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(REPO / "config" / "fastdds_shm.xml")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def start_node(model_path, cpu_threads, env, log_path):
    """Start perception_node in its own process with the camera topics remapped."""
    command = [
        sys.executable, "-m", "protomtl_ros.ros.perception_node", "--ros-args",
        "-p", f"model_path:={model_path}",
        "-p", f"cpu_threads:={cpu_threads}",
        "-r", "image:=/camera/image_raw",
        "-r", "camera_info:=/camera/camera_info",
    ]
    log = open(log_path, "w")
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)


def stop_node(process, timeout_s=20.0):
    """Stop the node with SIGINT, as Ctrl-C would, and return its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def colorize_depth(depth_m, max_depth_m):
    """Map depth in metres to an RGB image with invalid pixels shown black."""
    from matplotlib import colormaps

    valid = np.isfinite(depth_m)
    scaled = np.clip(np.where(valid, depth_m, 0.0) / max_depth_m, 0.0, 1.0)
    rgb = (colormaps["turbo"](scaled)[..., :3] * 255).astype(np.uint8)
    rgb[~valid] = 0
    return rgb


def write_panel(path, frame, outputs, image_to_numpy):
    """Save input, depth, segmentation colour and normals colour side by side."""
    depth = image_to_numpy(outputs.messages["/protomtl/depth/image"])
    finite = depth[np.isfinite(depth)]
    max_depth_m = float(np.percentile(finite, 99)) if finite.size else 1.0
    tiles = [
        frame.rgb,
        colorize_depth(depth, max(max_depth_m, 1e-3)),
        image_to_numpy(outputs.messages["/protomtl/segmentation/color"]),
        image_to_numpy(outputs.messages["/protomtl/normals/color"]),
    ]
    PilImage.fromarray(np.concatenate(tiles, axis=1)).save(path)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL,
                        help="deployable model file (default: %(default)s)")
    parser.add_argument("--output-dir", type=Path, default=REPO / "demo_output",
                        help="folder for the panels and summary.json (default: %(default)s)")
    parser.add_argument("--rate-hz", type=float, default=1.0,
                        help="camera frame rate in Hz (default: %(default)s)")
    parser.add_argument("--loops", type=int, default=2,
                        help="times the bundled frames are played (default: %(default)s)")
    parser.add_argument("--domain-id", type=int, default=int(os.environ.get("ROS_DOMAIN_ID", 12)),
                        help="ROS_DOMAIN_ID for the node and the demo (default: %(default)s)")
    parser.add_argument("--cpu-threads", type=int, default=1,
                        help="torch CPU threads of the node; 0 is PyTorch's default of one per "
                        "core. The demo model is small, and one thread keeps it fast when "
                        "other jobs share the CPU (default: %(default)s)")
    parser.add_argument("--answer-timeout-s", type=float, default=30.0,
                        help="time to wait for the outputs of one frame before the next frame "
                        "is sent (default: %(default)s)")
    parser.add_argument("--startup-timeout-s", type=float, default=120.0,
                        help="time allowed for the node to load its model (default: %(default)s)")
    return parser.parse_args()


def main():
    args = parse_args()
    if not args.model.is_file():
        sys.exit(f"Model file not found: {args.model}. Build it with `make demo-model` "
                 "(see README, section 'The demo model').")
    if args.rate_hz <= 0 or args.loops < 1 or args.answer_timeout_s <= 0:
        sys.exit(f"Invalid --rate-hz {args.rate_hz}, --loops {args.loops} or "
                 f"--answer-timeout-s {args.answer_timeout_s}: each must be positive.")
    if args.cpu_threads < 0:
        sys.exit(f"Invalid --cpu-threads {args.cpu_threads}: use 0 (PyTorch's default) or more.")

    env = ros_environment(args.domain_id)
    os.environ.update({key: env[key] for key in
                       ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID",
                        "FASTDDS_DEFAULT_PROFILES_FILE")})
    args.output_dir.mkdir(parents=True, exist_ok=True)
    node_process = start_node(args.model.resolve(), args.cpu_threads, env,
                              args.output_dir / "node.log")
    try:
        summary = run_camera(args, node_process)
    finally:
        exit_code = stop_node(node_process)
    summary["node_exit_code"] = exit_code
    (args.output_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))

    answered = all(count == summary["frames_sent"]
                   for count in summary["frames_received"].values())
    if not answered:
        sys.exit("Some frames were not answered on every topic: see summary.json and node.log "
                 f"in {args.output_dir}.")


def run_camera(args, node_process):
    """Publish the frames, collect the outputs and return the summary dictionary."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    frames = load_frames()
    rclpy.init()
    camera = make_camera_class()(OUTPUT_TOPICS)
    executor = SingleThreadedExecutor()
    executor.add_node(camera)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        camera.wait_for_node(node_process, args.startup_timeout_s)
        sent = []
        period_s = 1.0 / args.rate_hz
        started_s = next_s = time.monotonic()
        for loop in range(args.loops):
            for frame in frames:
                # The node processes only the newest frame, so a frame sent while the previous
                # one is still in inference would replace it. Wait for the previous outputs
                # (the rate drops below --rate-hz only when the node is slower than that).
                if sent:
                    camera.wait_for_outputs([sent[-1][0]], timeout_s=args.answer_timeout_s)
                next_s = max(next_s + period_s, time.monotonic())
                sent.append((camera.publish_frame(frame), frame, loop))
                time.sleep(max(0.0, next_s - time.monotonic()))
        camera.wait_for_outputs([stamp for stamp, _, _ in sent], timeout_s=args.answer_timeout_s)
        elapsed_s = time.monotonic() - started_s
    finally:
        executor.shutdown()
        camera.destroy_node()
        rclpy.try_shutdown()

    latencies_ms = []
    for stamp, frame, loop in sent:
        outputs = camera.outputs.get(stamp)
        if outputs is None or len(outputs.messages) < len(OUTPUT_TOPICS):
            continue
        latencies_ms.append((max(outputs.arrival_s.values()) - outputs.sent_s) * 1000.0)
        if loop == 0:
            write_panel(args.output_dir / f"{frame.name}.png", frame, outputs, message_to_numpy)

    received = {topic: sum(topic in camera.outputs.get(stamp, Outputs(0.0)).messages
                           for stamp, _, _ in sent) for topic in OUTPUT_TOPICS}
    missing = {}
    for topic in OUTPUT_TOPICS:
        names = [f"{frame.name} (loop {loop})" for stamp, frame, loop in sent
                 if topic not in camera.outputs.get(stamp, Outputs(0.0)).messages]
        if names:
            missing[topic] = names
    return {
        "frames_sent": len(sent),
        "frames_received": received,
        "frames_missing": missing,
        "effective_rate_hz": len(sent) / elapsed_s if elapsed_s > 0 else None,
        "latency_ms": {
            "median": float(np.median(latencies_ms)) if latencies_ms else None,
            "max": float(np.max(latencies_ms)) if latencies_ms else None,
        },
        "rate_hz": args.rate_hz,
        "model_file": str(args.model),
        "frames": sorted({frame.name for _, frame, _ in sent}),
    }


def message_to_numpy(message):
    """Decode the output encodings the node publishes (32FC1, 32FC3, mono8, rgb8)."""
    dtypes = {"32FC1": (np.float32, 1), "32FC3": (np.float32, 3),
              "mono8": (np.uint8, 1), "rgb8": (np.uint8, 3)}
    if message.encoding not in dtypes:
        raise ValueError(f"Unexpected output encoding {message.encoding!r}; "
                         f"expected one of {sorted(dtypes)}.")
    dtype, channels = dtypes[message.encoding]
    dtype = np.dtype(dtype).newbyteorder(">" if message.is_bigendian else "<")
    row_bytes = message.width * channels * dtype.itemsize
    rows = np.frombuffer(bytes(message.data), dtype=np.uint8).reshape(message.height, -1)
    pixels = rows[:, :row_bytes].copy().view(dtype).astype(dtype.newbyteorder("="))
    shape = (message.height, message.width) if channels == 1 else \
        (message.height, message.width, channels)
    return pixels.reshape(shape)


def make_camera_class():
    """Build the demo camera node class; rclpy is imported only after the node starts."""
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image

    class DemoCamera(Node):
        """Publish frames as a camera driver would and collect the node's outputs."""

        def __init__(self, output_topics):
            super().__init__("protomtl_demo_camera")
            self.lock = threading.Lock()
            self.outputs = {}
            self.image_publisher = self.create_publisher(Image, "/camera/image_raw", 5)
            self.info_publisher = self.create_publisher(CameraInfo, "/camera/camera_info", 5)
            qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
            for topic in output_topics:
                message_type = CameraInfo if topic.endswith("camera_info") else Image
                self.create_subscription(
                    message_type, topic,
                    lambda message, topic=topic: self.output_callback(topic, message), qos)

        def publish_frame(self, frame):
            """Publish one frame and its camera_info with the same header."""
            stamp = self.get_clock().now().to_msg()
            image = Image()
            image.header.stamp = stamp
            image.header.frame_id = "camera_color_optical_frame"
            image.height, image.width = frame.rgb.shape[:2]
            image.encoding = "rgb8"
            image.step = image.width * 3
            image.data = frame.rgb.tobytes()
            info = CameraInfo()
            info.header = image.header
            info.height, info.width = image.height, image.width
            info.distortion_model = "plumb_bob"
            info.d = [0.0] * 5
            info.k = [frame.fx, 0.0, frame.cx, 0.0, frame.fy, frame.cy, 0.0, 0.0, 1.0]
            info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
            info.p = [frame.fx, 0.0, frame.cx, 0.0, 0.0, frame.fy, frame.cy, 0.0,
                      0.0, 0.0, 1.0, 0.0]
            key = (stamp.sec, stamp.nanosec)
            with self.lock:
                self.outputs[key] = Outputs(sent_s=time.monotonic())
            self.info_publisher.publish(info)
            self.image_publisher.publish(image)
            return key

        def output_callback(self, topic, message):
            """Store an output message under the stamp of its input frame."""
            key = (message.header.stamp.sec, message.header.stamp.nanosec)
            with self.lock:
                outputs = self.outputs.get(key)
                if outputs is not None and topic not in outputs.messages:
                    outputs.messages[topic] = message
                    outputs.arrival_s[topic] = time.monotonic()

        def wait_for_node(self, node_process, timeout_s):
            """Wait until the perception node subscribes to the camera topic."""
            deadline = time.monotonic() + timeout_s
            while self.image_publisher.get_subscription_count() == 0:
                if node_process.poll() is not None:
                    raise SystemExit(f"perception_node exited with code "
                                     f"{node_process.returncode} before subscribing; "
                                     "see node.log in the output folder.")
                if time.monotonic() > deadline:
                    raise SystemExit(f"perception_node did not subscribe within {timeout_s} s.")
                time.sleep(0.1)
            # Discovery of the reverse direction (outputs to this node) can lag a little.
            time.sleep(1.0)

        def wait_for_outputs(self, keys, timeout_s):
            """Wait until every frame has all outputs, or the timeout passes."""
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                with self.lock:
                    done = all(len(self.outputs[key].messages) == len(OUTPUT_TOPICS)
                               for key in keys)
                if done:
                    return
                time.sleep(0.1)

    return DemoCamera


if __name__ == "__main__":
    main()
