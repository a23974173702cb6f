"""Measure the perception node's end-to-end latency against the bare forward pass.

Starts the real node as a separate process with an exported artifact and publishes 640x480
rgb8 frames plus camera_info from this process. Two measurements:

- Overhead: one frame at a time. The end-to-end time runs from publish until the last of
  the six outputs (depth, depth camera_info, segmentation, segmentation colour, normals,
  normals colour) arrives. It is compared with the forward time of the same artifact on a
  preprocessed tensor in this process, with the same number of torch threads. Each repeat
  times one bare forward pass and then one node frame, so load changes on the machine
  affect both alike. node_overhead_ratio = median end-to-end / median bare forward.
- Bounded latency: a camera publishing at --rate-hz for --duration-s while inference is
  slower than the frame period. The age of an output is its arrival time minus the publish
  time of the frame it was computed from (matched by header stamp).
  output_age_p95_ratio = p95(age) / the node's mean inference time from /diagnostics
  (preprocessing, forward and postprocessing of one frame). A queue that grows shows up as
  an age that rises over the run.

    ROS_DOMAIN_ID=90 python benchmarks/bench_node_latency.py --output /tmp/node_latency.json
"""

import argparse
import json
import os
from pathlib import Path
import statistics
import sys
import tempfile
import threading
import time

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))
sys.path.insert(0, str(REPO_ROOT))

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE",
                      str(REPO_ROOT / "config" / "fastdds_shm.xml"))

import torch  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from protomtl_ros.network import ModelConfig, build_model  # noqa: E402
from protomtl_ros.runtime import artifact  # noqa: E402
from protomtl_ros.runtime.engine import InferenceEngine  # noqa: E402
from protomtl_ros.runtime.preprocess import preprocess  # noqa: E402
from ros_helpers import (  # noqa: E402
    NodeProcess, RosClient, camera_info_for, diagnostic_values, encode_rgb, stamp_message,
    wait_for_node_ready,
)

CAMERA_TOPIC = "/bench_camera/image_raw"
CAMERA_INFO_TOPIC = "/bench_camera/camera_info"
OUTPUT_TOPICS = {
    "/protomtl/depth/image": Image,
    "/protomtl/depth/camera_info": CameraInfo,
    "/protomtl/segmentation/image": Image,
    "/protomtl/segmentation/color": Image,
    "/protomtl/normals/image": Image,
    "/protomtl/normals/color": Image,
}
# Header stamps (seconds) of the warm-up, overhead and camera frames. The ranges are disjoint,
# so each output is matched to the frame it was computed from.
WARMUP_SEC = 1
OVERHEAD_SEC = 1000
CAMERA_SEC = 100000
WARMUP_TIMEOUT_S = 120.0
# NodeProcess starts the node with OMP_NUM_THREADS=1, so the bare forward pass uses one
# torch thread too.
NODE_THREADS = 1
FRAME_TIMEOUT_S = 30.0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="JSON file to write.")
    parser.add_argument("--model", type=Path, default=None,
                        help="Artifact (.pt2) the node loads. Default: export a tiny model "
                        "with random weights at --height x --width to a temporary folder.")
    parser.add_argument("--height", type=int, default=288,
                        help="Network input height of the exported model. Default: 288.")
    parser.add_argument("--width", type=int, default=384,
                        help="Network input width of the exported model. Default: 384.")
    parser.add_argument("--frame-height", type=int, default=480,
                        help="Camera frame height in pixels. Default: 480.")
    parser.add_argument("--frame-width", type=int, default=640,
                        help="Camera frame width in pixels. Default: 640.")
    parser.add_argument("--overhead-frames", type=int, default=30,
                        help="Sequential frames of the overhead measurement. Default: 30.")
    parser.add_argument("--rate-hz", type=float, default=30.0,
                        help="Camera rate of the latency measurement in Hz. Default: 30.")
    parser.add_argument("--duration-s", type=float, default=20.0,
                        help="Length of the latency measurement in seconds. Default: 20.")
    parser.add_argument("--domain-id", type=int,
                        default=int(os.environ.get("ROS_DOMAIN_ID", "90")),
                        help="ROS_DOMAIN_ID. Default: $ROS_DOMAIN_ID or 90.")
    args = parser.parse_args(argv)

    if args.model is not None and not args.model.is_file():
        parser.error(f"--model {args.model}: file not found; pass an exported .pt2 artifact")
    if args.height % 32 or args.width % 32:
        parser.error(f"--height {args.height} --width {args.width}: use multiples of 32")
    if min(args.overhead_frames, args.frame_height, args.frame_width) < 1:
        parser.error("--overhead-frames and the frame size must be >= 1")
    if args.rate_hz <= 0 or args.duration_s <= 0:
        parser.error("--rate-hz and --duration-s must be > 0")
    return args


def export_tiny_model(folder: Path, height: int, width: int) -> Path:
    """Export a tiny network with random weights; the timing does not depend on the values."""
    torch.manual_seed(0)
    config = ModelConfig.for_size("tiny", input_height=height, input_width=width,
                                  pretrained=None)
    path = folder / "tiny_bench.pt2"
    artifact.save_artifact(path, build_model(config).eval(), config)
    return path


class ArrivalRecorder:
    """Record the arrival time of every output message, keyed by the header stamp."""

    def __init__(self, client: RosClient):
        self._lock = threading.Condition()
        self.arrivals = {}
        self.subscriptions = []
        for topic, message_type in OUTPUT_TOPICS.items():
            callback = self._make_callback(topic)
            self.subscriptions.append(
                client.node.create_subscription(message_type, topic, callback, 10))
        self.diagnostics = []
        client.node.create_subscription(DiagnosticArray, "/diagnostics",
                                        self.diagnostics.append, 10)

    def _make_callback(self, topic: str):
        def record(msg):
            arrived = time.monotonic()
            key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
            with self._lock:
                self.arrivals.setdefault(key, {})[topic] = arrived
                self._lock.notify_all()
        return record

    def last_arrival(self, key, timeout_s: float) -> float | None:
        """Wait until all six outputs of `key` arrived; return the latest arrival time."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while len(self.arrivals.get(key, {})) < len(OUTPUT_TOPICS):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._lock.wait(remaining)
            return max(self.arrivals[key].values())

    def complete(self) -> dict:
        """Return {stamp: latest arrival} of the frames whose six outputs all arrived."""
        with self._lock:
            return {key: max(times.values()) for key, times in self.arrivals.items()
                    if len(times) == len(OUTPUT_TOPICS)}

    def publishers_matched(self) -> bool:
        return all(s.get_publisher_count() > 0 for s in self.subscriptions)


def bare_forward_ms(engine: InferenceEngine, x: torch.Tensor) -> float:
    engine.forward(x)
    return engine.forward_ms


def measure_overhead(args, publisher, recorder, engine, frame_msg, x) -> dict:
    """Alternate one bare forward pass and one node frame; return both medians."""
    forward_ms, end_to_end_ms = [], []
    for index in range(args.overhead_frames):
        forward_ms.append(bare_forward_ms(engine, x))
        key = (OVERHEAD_SEC + index, 0)
        stamp_message(frame_msg, *key)
        sent = time.monotonic()
        publisher.publish(frame_msg)
        arrived = recorder.last_arrival(key, FRAME_TIMEOUT_S)
        if arrived is None:
            raise RuntimeError(f"timed out after {FRAME_TIMEOUT_S} s waiting for the node's "
                               f"outputs of overhead frame {index}; see the node log")
        end_to_end_ms.append((arrived - sent) * 1000.0)

    median_forward = statistics.median(forward_ms)
    median_end_to_end = statistics.median(end_to_end_ms)
    return {
        "node_overhead_ratio": median_end_to_end / median_forward,
        "end_to_end_median_ms": median_end_to_end,
        "bare_forward_median_ms": median_forward,
        "end_to_end_ms": end_to_end_ms,
        "bare_forward_ms": forward_ms,
        "frames": args.overhead_frames,
    }


def publish_camera(args, publisher, frame_msg) -> dict:
    """Publish frames at --rate-hz for --duration-s; return {stamp: publish time}."""
    period_s = 1.0 / args.rate_hz
    count = int(round(args.duration_s * args.rate_hz))
    sent = {}
    next_time = time.monotonic()
    for index in range(count):
        key = (CAMERA_SEC + index, 0)
        stamp_message(frame_msg, *key)
        sent[key] = time.monotonic()
        publisher.publish(frame_msg)
        next_time += period_s
        time.sleep(max(0.0, next_time - time.monotonic()))
    return sent


def node_inference_ms(diagnostics: list) -> float | None:
    """Return the mean inference time from the newest /diagnostics message of the node."""
    for message in reversed(diagnostics):
        values = diagnostic_values(message)
        if values and values.get("inference_time_mean_ms") not in (None, "nan"):
            return float(values["inference_time_mean_ms"])
    return None


def diagnostics_totals(diagnostics: list) -> dict | None:
    """Return frame count and summed inference and forward times from the newest report."""
    for message in reversed(diagnostics):
        values = diagnostic_values(message)
        if not values or values.get("forward_time_mean_ms") in (None, "nan"):
            continue
        frames = int(values["frames_published"]) + int(values["frames_failed"])
        return {
            "frames": frames,
            "inference_ms": float(values["inference_time_mean_ms"]) * frames,
            "forward_ms": float(values["forward_time_mean_ms"]) * frames,
        }
    return None


def wait_for_totals(diagnostics: list, min_frames: int, timeout_s: float = 5.0) -> dict | None:
    """Wait for a /diagnostics report that counts at least `min_frames` frames."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        totals = diagnostics_totals(diagnostics)
        if totals is not None and totals["frames"] >= min_frames:
            return totals
        time.sleep(0.1)
    return None


def node_breakdown(before: dict | None, after: dict | None) -> dict | None:
    """Mean node inference and forward time over the frames between two reports."""
    if before is None or after is None or after["frames"] <= before["frames"]:
        return None
    frames = after["frames"] - before["frames"]
    return {
        "frames": frames,
        "node_inference_mean_ms": (after["inference_ms"] - before["inference_ms"]) / frames,
        "node_forward_mean_ms": (after["forward_ms"] - before["forward_ms"]) / frames,
    }


def summarise_ages(sent: dict, arrivals: dict, inference_ms: float, args) -> dict:
    """Return the age statistics of the camera outputs and whether the age grows."""
    keys = sorted(key for key in arrivals if key in sent)
    if len(keys) < 4:
        raise RuntimeError(f"outputs arrived for only {len(keys)} camera frames; at least 4 "
                           "are needed for a latency figure")
    start = sent[keys[0]]
    times_s = np.array([sent[key] - start for key in keys])
    ages_ms = np.array([(arrivals[key] - sent[key]) * 1000.0 for key in keys])

    half = len(keys) // 2
    first_half, second_half = float(np.median(ages_ms[:half])), float(np.median(ages_ms[half:]))
    slope_ms_per_s = float(np.polyfit(times_s, ages_ms, 1)[0])
    growth_over_run_ms = slope_ms_per_s * float(times_s[-1] - times_s[0])
    p95 = float(np.percentile(ages_ms, 95))
    return {
        "output_age_p95_ratio": p95 / inference_ms,
        "output_age_p95_ms": p95,
        "output_age_median_ms": float(np.median(ages_ms)),
        "output_age_max_ms": float(ages_ms.max()),
        "inference_ms": inference_ms,
        "first_half_median_age_ms": first_half,
        "second_half_median_age_ms": second_half,
        "age_slope_ms_per_s": slope_ms_per_s,
        "age_growth_over_run_ms": growth_over_run_ms,
        # A growing queue adds about one frame period of age per frame. Growth below half
        # an inference time over the whole run therefore means that no frames pile up.
        "no_growing_queue": bool(growth_over_run_ms < 0.5 * inference_ms),
        "frames_sent": len(sent),
        "frames_answered": len(keys),
        "rate_hz": args.rate_hz,
        "duration_s": args.duration_s,
        "samples": [[round(float(t), 3), round(float(a), 1)] for t, a in zip(times_s, ages_ms)],
    }


def run(args, model_path: Path) -> dict:
    torch.set_num_threads(NODE_THREADS)
    engine = InferenceEngine.from_file(model_path)
    frame = np.random.default_rng(0).integers(
        0, 256, (args.frame_height, args.frame_width, 3), np.uint8)
    x = preprocess(frame, engine.input_size, engine.metadata["mean"], engine.metadata["std"])
    frame_msg = encode_rgb(frame)

    client = RosClient(args.domain_id, name="protomtl_latency_bench")
    recorder = ArrivalRecorder(client)
    publisher = client.publisher(Image, CAMERA_TOPIC)
    info_publisher = client.publisher(CameraInfo, CAMERA_INFO_TOPIC)
    node = NodeProcess(args.domain_id, {"model_path": str(model_path)},
                       {"image": CAMERA_TOPIC, "camera_info": CAMERA_INFO_TOPIC})

    try:
        wait_for_node_ready(node, publisher)
        deadline = time.monotonic() + WARMUP_TIMEOUT_S
        while not recorder.publishers_matched() and time.monotonic() < deadline:
            time.sleep(0.1)

        # Camera info first, then repeat a warm-up frame until all six outputs come back:
        # the first frames after discovery can be lost.
        info_publisher.publish(camera_info_for(args.frame_width, args.frame_height))
        warm = None
        while warm is None and time.monotonic() < deadline:
            info_publisher.publish(camera_info_for(args.frame_width, args.frame_height))
            publisher.publish(stamp_message(frame_msg, WARMUP_SEC))
            warm = recorder.last_arrival((WARMUP_SEC, 0), 5.0)
        if warm is None:
            raise RuntimeError(f"the node produced no complete output; log:\n{node.log()}")
        for _ in range(3):
            bare_forward_ms(engine, x)

        # /diagnostics comes once a second; its running totals give the node's own
        # inference and forward times over exactly the overhead frames.
        before = wait_for_totals(recorder.diagnostics, 1)
        overhead = measure_overhead(args, publisher, recorder, engine, frame_msg, x)
        after = wait_for_totals(recorder.diagnostics,
                                (before["frames"] if before else 0) + args.overhead_frames)
        overhead["node"] = node_breakdown(before, after)
        print(f"overhead: end-to-end {overhead['end_to_end_median_ms']:.1f} ms, bare forward "
              f"{overhead['bare_forward_median_ms']:.1f} ms, ratio "
              f"{overhead['node_overhead_ratio']:.3f}", flush=True)

        sent = publish_camera(args, publisher, frame_msg)
        time.sleep(3.0)
        arrivals = recorder.complete()
        diagnostics_ms = node_inference_ms(recorder.diagnostics)
        alive = node.alive()
    finally:
        exit_code = node.stop()
        client.close()
        node.close()

    inference_source = "node /diagnostics inference_time_mean_ms"
    inference_ms = diagnostics_ms
    if inference_ms is None:
        inference_source = "bare forward median (no /diagnostics message received)"
        inference_ms = overhead["bare_forward_median_ms"]
    latency = summarise_ages(sent, arrivals, inference_ms, args)
    latency["inference_time_source"] = inference_source
    latency["bare_forward_median_ms"] = overhead["bare_forward_median_ms"]
    print(f"latency: p95 age {latency['output_age_p95_ms']:.1f} ms, inference "
          f"{inference_ms:.1f} ms, ratio {latency['output_age_p95_ratio']:.3f}, "
          f"no_growing_queue {latency['no_growing_queue']}", flush=True)

    return {
        "node_overhead_ratio": overhead["node_overhead_ratio"],
        "output_age_p95_ratio": latency["output_age_p95_ratio"],
        "no_growing_queue": latency["no_growing_queue"],
        "overhead": overhead,
        "latency": latency,
        "settings": {
            "model": str(args.model) if args.model else "tiny, random weights, exported",
            "network_input_hw": list(engine.input_size),
            "frame_hw": [args.frame_height, args.frame_width],
            "encoding": "rgb8",
            "threads": NODE_THREADS,
            "backend": engine.backend,
        },
        "node_alive_at_end": alive,
        "node_exit_code": exit_code,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="protomtl_latency_") as folder:
        model_path = args.model or export_tiny_model(Path(folder), args.height, args.width)
        result = run(args, model_path)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0 if result["node_alive_at_end"] and result["node_exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
