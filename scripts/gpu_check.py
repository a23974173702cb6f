"""Check training, compilation and inference on a CUDA machine in a few minutes.

Trains the tiny model for a few mixed-precision steps on random data. Exports it with
AOTInductor for this GPU, and with Torch-TensorRT at fp32 and fp16 when torch_tensorrt
imports. Checks every artifact against eager on a real frame, times one forward pass at
batch 1 per backend, and writes the results as JSON. Exits with status 1 when CUDA is
missing, training produces a non-finite loss or an artifact does not match eager.

    python scripts/gpu_check.py --output gpu_check.json
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
for folder in (REPO, REPO / "training"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import export as export_tool  # noqa: E402  (training/export.py)
from protomtl_ros.network import InferenceGraph, ModelConfig, build_model  # noqa: E402
from protomtl_ros.network.tasks import TASKS  # noqa: E402
from protomtl_ros.runtime import InferenceEngine, write_checkpoint  # noqa: E402
from protomtl_ros.runtime.backends import torch_tensorrt_version  # noqa: E402
from protomtl_ros.runtime.metadata import library_versions  # noqa: E402
from protomtl_training.config import LossConfig  # noqa: E402
from protomtl_training.losses import MultiTaskLoss  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="JSON file to write.")
    parser.add_argument("--steps", type=int, default=20, help="Training steps. Default: 20.")
    parser.add_argument("--batch-size", type=int, default=4, help="Training batch. Default: 4.")
    parser.add_argument("--height", type=int, default=288, help="Input height. Default: 288.")
    parser.add_argument("--width", type=int, default=384, help="Input width. Default: 384.")
    parser.add_argument("--repeats", type=int, default=50,
                        help="Timed forward passes per backend. Default: 50.")
    args = parser.parse_args(argv)

    if args.height % 32 or args.width % 32:
        parser.error(f"--height {args.height} --width {args.width}: use multiples of 32")
    if args.steps < 1 or args.batch_size < 2 or args.repeats < 1:
        parser.error("use --steps >= 1, --batch-size >= 2 (the triplet loss needs two images) "
                     "and --repeats >= 1")
    return args


def random_batch(args: argparse.Namespace, num_classes: int, device: torch.device) -> dict:
    """Return a batch in the training data layout with random images and labels."""
    size = (args.batch_size, args.height, args.width)
    normals = torch.nn.functional.normalize(torch.randn(size[0], 3, *size[1:]), dim=1)
    return {
        "image": torch.randn(size[0], 3, *size[1:], device=device),
        "semseg": torch.randint(0, num_classes, size, device=device),
        "depth": torch.rand(size[0], 1, *size[1:], device=device) * 5.0 + 0.5,
        "normals": normals.to(device),
        "valid": {task: torch.ones(size, dtype=torch.bool, device=device) for task in TASKS},
        "labelled": torch.ones(size[0], len(TASKS), device=device),
    }


def train_briefly(args, config: ModelConfig, device: torch.device) -> tuple[torch.nn.Module, dict]:
    """Train for args.steps steps with float16 autocast and a gradient scaler."""
    model = build_model(config).to(device).train()
    loss_fn = MultiTaskLoss(LossConfig())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler("cuda")

    losses = []
    start = time.perf_counter()
    for _ in range(args.steps):
        batch = random_batch(args, config.num_classes, device)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.float16):
            outputs = model(batch["image"])
        total = loss_fn(outputs, batch)["total"]
        scaler.scale(total).backward()
        scaler.step(optimizer)
        scaler.update()
        losses.append(float(total.detach()))
    torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start

    return model.eval(), {
        "steps": args.steps,
        "batch_size": args.batch_size,
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "all_finite": all(torch.isfinite(torch.tensor(losses)).tolist()),
        "ms_per_step": seconds / args.steps * 1000.0,
    }


def export_and_check(checkpoint: Path, folder: Path, backend: str, precision: str) -> dict:
    """Export with training/export.py's functions and compare the artifact with eager."""
    settings = export_tool.ExportSettings(
        checkpoint=checkpoint, backend=backend, precision=precision, device="cuda",
        output=folder / f"{backend}_{precision}.pt2",
    )
    start = time.perf_counter()
    export_tool.export_artifact(settings)
    export_s = time.perf_counter() - start

    used, differences = export_tool.compare_with_eager(settings)
    failures = export_tool.parity_failures(differences, precision)
    return {
        "path": str(settings.output),
        "backend_used": used,
        "export_s": export_s,
        "differences": differences,
        "parity_failures": failures,
    }


def time_forward(run, image: torch.Tensor, repeats: int) -> float:
    """Return the median forward time in milliseconds, timed with CUDA events."""
    with torch.inference_mode():
        for _ in range(10):
            run(image)

        times_ms = []
        for _ in range(repeats):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            run(image)
            end.record()
            torch.cuda.synchronize()
            times_ms.append(start.elapsed_time(end))
    return statistics.median(times_ms)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        print("error: CUDA is not available: gpu_check needs an NVIDIA GPU with a working "
              f"driver and a CUDA build of torch (this torch is {torch.__version__})",
              file=sys.stderr)
        return 1

    device = torch.device("cuda")
    report = {
        "gpu": torch.cuda.get_device_name(device),
        "cuda_capability": list(torch.cuda.get_device_capability(device)),
        "versions": library_versions(),
        "input_hw": [args.height, args.width],
    }
    config = ModelConfig.for_size(
        "tiny", input_height=args.height, input_width=args.width, pretrained=None
    )

    torch.manual_seed(0)
    model, report["training"] = train_briefly(args, config, device)
    print(f"training: {report['training']}", flush=True)

    exports = [("aoti", "fp32")]
    if torch_tensorrt_version() is not None:
        exports += [("tensorrt", "fp32"), ("tensorrt", "fp16")]
    else:
        report["tensorrt_skipped"] = "torch_tensorrt is not installed"

    with tempfile.TemporaryDirectory(prefix="protomtl_gpu_check_") as folder:
        folder = Path(folder)
        checkpoint = folder / "tiny.pt"
        write_checkpoint(checkpoint, model.cpu(), config)

        report["exports"] = {}
        for backend, precision in exports:
            name = f"{backend}_{precision}"
            report["exports"][name] = export_and_check(checkpoint, folder, backend, precision)
            print(f"{name}: {report['exports'][name]}", flush=True)

        image = torch.randn(1, 3, args.height, args.width, device=device)
        graph = InferenceGraph(model).to(device).eval()
        report["forward_ms"] = {"eager": time_forward(graph, image, args.repeats)}
        for name, result in report["exports"].items():
            engine = InferenceEngine.from_file(result["path"], device=device,
                                               backend=result["backend_used"])
            report["forward_ms"][name] = time_forward(engine.runner, image, args.repeats)

        # The portable program is what a GPU machine without a usable compiled program
        # falls back to: it is moved to CUDA at load time.
        portable = InferenceEngine.from_file(report["exports"]["aoti_fp32"]["path"],
                                             device=device, backend="exported")
        with torch.inference_mode():
            expected, actual = graph(image), portable.runner(image)
        report["portable_on_cuda"] = {
            "max_abs_difference": [float((a - e).abs().max()) for a, e in zip(actual, expected)],
            "tolerance": export_tool.FP32_ABS_TOLERANCE,
        }
        report["forward_ms"]["exported"] = time_forward(portable.runner, image, args.repeats)
    print(f"forward_ms: {report['forward_ms']}")

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")

    failures = [f"{name}: {failure}" for name, result in report["exports"].items()
                for failure in result["parity_failures"]]
    if max(report["portable_on_cuda"]["max_abs_difference"]) > export_tool.FP32_ABS_TOLERANCE:
        failures.append(f"portable program on CUDA: {report['portable_on_cuda']}")
    if not report["training"]["all_finite"]:
        failures.append("training produced a non-finite loss")
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
