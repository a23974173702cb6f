"""Measure the perception node's resident memory (RSS) over many frames.

Starts the node as a separate process with a model file, publishes small frames at a fixed
rate, samples the node's VmRSS from /proc, and writes the growth after warm-up as JSON.

    ROS_DOMAIN_ID=63 python benchmarks/bench_node_memory.py --model-path MODEL \\
        --output benchmarks/results/node_memory.json
"""

import argparse
import json
import os
from pathlib import Path
import sys
import time

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE",
                      str(REPO_ROOT / "config" / "fastdds_shm.xml"))

from ros_helpers import (  # noqa: E402
    NodeProcess, RosClient, encode_rgb, has_stamp, send_until_received, stamp_message,
    wait_for_node_ready,
)
from sensor_msgs.msg import Image  # noqa: E402


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path", required=True, help="model file the node loads")
    parser.add_argument("--frames", type=int, default=5000,
                        help="frames measured after warm-up (default: 5000)")
    parser.add_argument("--warmup-frames", type=int, default=300,
                        help="frames sent before the baseline sample (default: 300)")
    parser.add_argument("--rate-hz", type=float, default=100.0,
                        help="publish rate in frames per second (default: 100)")
    parser.add_argument("--height", type=int, default=48, help="frame height (default: 48)")
    parser.add_argument("--width", type=int, default=64, help="frame width (default: 64)")
    parser.add_argument("--samples", type=int, default=20,
                        help="RSS samples taken during the measured frames (default: 20)")
    parser.add_argument("--domain-id", type=int,
                        default=int(os.environ.get("ROS_DOMAIN_ID", "63")),
                        help="ROS_DOMAIN_ID (default: $ROS_DOMAIN_ID or 63)")
    parser.add_argument("--output", type=Path, required=True, help="JSON file to write")
    return parser


def read_rss_kib(pid: int) -> int:
    """Return the resident set size of ``pid`` in KiB from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"VmRSS missing from /proc/{pid}/status")


def publish_frames(publisher, frame, first_sec: int, count: int, rate_hz: float):
    period_s = 1.0 / rate_hz
    next_time = time.monotonic()
    for index in range(count):
        publisher.publish(stamp_message(encode_rgb(frame), first_sec + index))
        next_time += period_s
        time.sleep(max(0.0, next_time - time.monotonic()))


def main(args):
    client = RosClient(args.domain_id, name="protomtl_memory_bench")
    depth = client.collect(Image, "/protomtl/depth/image")
    publisher = client.publisher(Image, "/bench_camera/image_raw")
    node = NodeProcess(args.domain_id, {"model_path": args.model_path},
                       {"image": "/bench_camera/image_raw"})
    frame = np.random.default_rng(0).integers(0, 256, (args.height, args.width, 3), np.uint8)

    try:
        wait_for_node_ready(node, publisher, [depth])
        first = stamp_message(encode_rgb(frame), 1)
        if send_until_received(publisher, first, depth, has_stamp(1)) is None:
            raise RuntimeError(f"node produced no output; log:\n{node.log()}")

        publish_frames(publisher, frame, 10, args.warmup_frames, args.rate_hz)
        time.sleep(2.0)
        baseline_kib = read_rss_kib(node.pid)

        samples = []
        chunk = max(1, args.frames // args.samples)
        sent = 0
        started = time.monotonic()
        while sent < args.frames:
            count = min(chunk, args.frames - sent)
            publish_frames(publisher, frame, 100000 + sent, count, args.rate_hz)
            sent += count
            samples.append({"frames": sent, "rss_kib": read_rss_kib(node.pid)})
        time.sleep(2.0)
        final_kib = read_rss_kib(node.pid)
        elapsed_s = time.monotonic() - started
        outputs = sum(1 for m in depth.messages if m.header.stamp.sec >= 100000)
        alive = node.alive()
    finally:
        exit_code = node.stop()
        client.close()
        node.close()

    result = {
        "frames": args.frames,
        "warmup_frames": args.warmup_frames,
        "frame_size": [args.height, args.width],
        "rate_hz": args.rate_hz,
        "elapsed_s": round(elapsed_s, 1),
        "outputs_received": outputs,
        "baseline_rss_mib": round(baseline_kib / 1024, 1),
        "final_rss_mib": round(final_kib / 1024, 1),
        "max_rss_mib": round(max(s["rss_kib"] for s in samples) / 1024, 1),
        "growth_percent": round(100.0 * (final_kib - baseline_kib) / baseline_kib, 2),
        "samples": samples,
        "node_alive_at_end": alive,
        "node_exit_code": exit_code,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=2))
    return 0 if alive and exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
