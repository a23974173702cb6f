"""Export a training checkpoint as a deployable artifact (.pt2) and check it against eager.

The artifact always contains the portable torch.export program. --backend aoti adds an
AOTInductor package compiled for this machine's CPU or CUDA GPU; --backend tensorrt adds a
Torch-TensorRT program built for this machine's GPU. A machine that cannot run the compiled
program falls back to the portable one. After writing the file, the script loads it in
this process, runs it and the eager network on one real frame, prints the largest
difference per output and exits with status 1 when one exceeds the tolerance.

    python training/export.py --checkpoint runs/nyu/best.pt --backend aoti --output model.pt2
    python training/export.py --checkpoint best.pt --backend tensorrt --precision fp16 \\
        --device cuda --output model_trt_fp16.pt2
"""

import argparse
import copy
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from protomtl_ros.network import InferenceGraph, ModelConfig  # noqa: E402
from protomtl_ros.runtime import InferenceEngine, model_from_checkpoint, preprocess  # noqa: E402
from protomtl_ros.runtime.artifact import save_artifact  # noqa: E402
from protomtl_ros.runtime.backends import (  # noqa: E402
    BackendUnavailableError, compile_aoti, compile_tensorrt, compile_target, parse_device,
)
from protomtl_ros.runtime.container import BACKEND_MEMBERS  # noqa: E402
from protomtl_ros.runtime.errors import ProtoMTLError  # noqa: E402

BACKENDS = ("tensorrt", "aoti", "exported")
PRECISIONS = ("fp32", "fp16")
OUTPUT_NAMES = ("semseg", "depth", "normals")
DEFAULT_FRAME = REPO / "data" / "samples" / "real" / "nyu_0551" / "rgb.jpg"

# Largest allowed difference between artifact and eager outputs on the check frame.
# fp32: absolute, in the output's unit (logits, metres, unit-vector components). The compiled
# programs fuse and reorder float32 operations: measured here, that moves results by 4e-5 or
# less for the tiny and small models.
FP32_ABS_TOLERANCE = 1e-4
# Largest network input, in pixels, export accepts (1024x1024). The retrieval transformer
# attends over every feature-map position; at 2048x2048 one attention matrix alone needed an
# 8 GiB allocation on the CPU.
MAX_INPUT_PIXELS = 1024 * 1024
# fp16: relative to the largest magnitude of that output in the eager result. float16 keeps
# an 11-bit significand (rounding error 4.9e-4 per operation), which grows over the network's
# few dozen layers; 1e-2 is an estimate of the result. 5e-2 still catches a wrong weight,
# layout or cast, because those change outputs by their full scale.
FP16_RELATIVE_TOLERANCE = 5e-2


@dataclass
class ExportSettings:
    """Command-line options of the export script."""

    checkpoint: Path
    backend: str
    output: Path
    precision: str = "fp32"
    height: int | None = None
    width: int | None = None
    device: str = "cpu"
    frame: Path = DEFAULT_FRAME


def parse_args(argv=None) -> ExportSettings:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True,
                        help="Training checkpoint to export.")
    parser.add_argument("--backend", required=True, choices=BACKENDS,
                        help="Compiled program to add next to the portable program: tensorrt, "
                             "aoti, or exported for the portable program only.")
    parser.add_argument("--output", type=Path, required=True, help="Artifact file (.pt2).")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="Precision of the compiled program; fp16 needs --backend "
                             "tensorrt. Default: fp32.")
    parser.add_argument("--height", type=int, default=None,
                        help="Network input height in pixels, a multiple of 32. Default: the "
                             "checkpoint's input_height.")
    parser.add_argument("--width", type=int, default=None,
                        help="Network input width in pixels, a multiple of 32. Default: the "
                             "checkpoint's input_width.")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                        help="Device to compile for: aoti builds for it, tensorrt needs cuda. "
                             "Default: cpu.")
    parser.add_argument("--frame", type=Path, default=DEFAULT_FRAME,
                        help="RGB image for the parity check. Default: the bundled NYUv2 "
                             "frame nyu_0551.")
    args = parser.parse_args(argv)

    if args.output.suffix != ".pt2":
        parser.error(f"--output {args.output}: use a .pt2 file name")
    if args.precision == "fp16" and args.backend != "tensorrt":
        parser.error(f"--precision fp16 with --backend {args.backend}: fp16 needs --backend "
                     "tensorrt; the portable and AOTInductor programs are fp32")
    if args.backend == "tensorrt" and args.device != "cuda":
        parser.error("--backend tensorrt needs --device cuda")
    for name in ("height", "width"):
        value = getattr(args, name)
        if value is not None and (value < 32 or value % 32):
            parser.error(f"--{name} {value}: use a positive multiple of 32")
    if args.height and args.width and args.height * args.width > MAX_INPUT_PIXELS:
        parser.error(f"--height {args.height} --width {args.width}: at most "
                     f"{MAX_INPUT_PIXELS} pixels; the retrieval transformer's attention "
                     "memory grows with the square of the pixel count")
    # Fail before minutes of compiling, not when the file is written.
    folder = args.output.resolve().parent
    if args.output.is_dir():
        parser.error(f"--output {args.output} is a folder; give a file name ending in .pt2")
    if not folder.is_dir():
        parser.error(f"--output {args.output}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        parser.error(f"--output {args.output}: folder {folder} is not writable")

    return ExportSettings(**vars(args))


def load_network(settings: ExportSettings) -> tuple[torch.nn.Module, ModelConfig]:
    """Load the checkpoint on the CPU, with the input size the export requests."""
    model, config = model_from_checkpoint(settings.checkpoint, "cpu")
    config = config.replace(
        input_height=settings.height or config.input_height,
        input_width=settings.width or config.input_width,
    )
    return model, config


def compile_member(
    model: torch.nn.Module, config: ModelConfig, settings: ExportSettings
) -> tuple[dict[str, bytes], dict]:
    """Compile the backend's program; return (container members, metadata updates)."""
    if settings.backend == "exported":
        return {}, {}

    device = parse_device(settings.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailableError(
            "CUDA is not available: --device cuda needs an NVIDIA GPU with a working driver "
            "and a CUDA build of torch; use --device cpu to compile for this CPU"
        )

    input_shape = (1, 3, config.input_height, config.input_width)
    # The portable program is exported from the CPU model afterwards, so compile a copy.
    graph = InferenceGraph(copy.deepcopy(model)).to(device).eval()
    example = torch.zeros(input_shape, device=device)

    print(f"compiling {settings.backend} ({settings.precision}) for {device}, input "
          f"{list(input_shape)} ...", flush=True)
    if settings.backend == "aoti":
        with torch.no_grad():
            program = torch.export.export(graph, (example,))
        data = compile_aoti(program)
    else:
        data = compile_tensorrt(graph, example, settings.precision, device)

    target = compile_target(device)
    description = dict(
        target,
        member=BACKEND_MEMBERS[settings.backend],
        precision=settings.precision,
        input_shape=list(input_shape),
        dynamic_batch=False,
        max_batch=1,
    )
    updates = {
        "backend": settings.backend,
        "precision": settings.precision,
        "compiled_input_shape": list(input_shape),
        "gpu_name": target["gpu_name"],
        "members": {settings.backend: description},
    }
    return {BACKEND_MEMBERS[settings.backend]: data}, updates


def export_artifact(settings: ExportSettings) -> dict:
    """Write the artifact that `settings` describes; return its metadata."""
    model, config = load_network(settings)
    members, updates = compile_member(model, config, settings)
    return save_artifact(
        settings.output, model, config, extra_members=members, metadata_updates=updates
    )


def read_frame(path: Path) -> np.ndarray:
    """Read an image file as an H x W x 3 uint8 RGB array."""
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))
    except OSError as error:
        raise ProtoMTLError(
            f"cannot read the check frame {str(path)!r}: {error}; pass an RGB image with --frame"
        ) from error


def compare_with_eager(settings: ExportSettings) -> tuple[str, dict[str, dict]]:
    """Run the written artifact and the eager network on the check frame.

    Returns (backend the artifact ran with, {output name: {"max_abs", "max_ref", "relative"}}).
    """
    device = parse_device(settings.device)
    engine = InferenceEngine.from_file(settings.output, device=device, backend=settings.backend)

    model, _ = load_network(settings)
    graph = InferenceGraph(model).to(device).eval()

    metadata = engine.metadata
    image = preprocess(read_frame(settings.frame), engine.input_size, metadata["mean"],
                       metadata["std"], device)
    compiled_outputs = engine.forward(image)
    with torch.inference_mode():
        eager_outputs = graph(image)

    differences = {}
    for name, compiled, eager in zip(OUTPUT_NAMES, compiled_outputs, eager_outputs):
        compiled = compiled.float()
        max_abs = (compiled - eager).abs().max().item()
        max_ref = eager.abs().max().item()
        differences[name] = {
            "max_abs": max_abs,
            "max_ref": max_ref,
            "relative": max_abs / max(max_ref, 1e-12),
        }
    return engine.backend, differences


def parity_failures(differences: dict[str, dict], precision: str) -> list[str]:
    """Return one message per output whose difference exceeds the precision's tolerance."""
    failures = []
    for name, difference in differences.items():
        if precision == "fp32" and difference["max_abs"] > FP32_ABS_TOLERANCE:
            failures.append(
                f"{name}: max abs difference {difference['max_abs']:.3g} > {FP32_ABS_TOLERANCE:g}"
            )
        if precision == "fp16" and difference["relative"] > FP16_RELATIVE_TOLERANCE:
            failures.append(
                f"{name}: max difference {difference['relative']:.3g} of the output's range "
                f"> {FP16_RELATIVE_TOLERANCE:g}"
            )
    return failures


def main(argv=None) -> int:
    settings = parse_args(argv)

    try:
        metadata = export_artifact(settings)
        size_mb = settings.output.stat().st_size / 2**20
        print(f"wrote {settings.output} ({size_mb:.1f} MiB, backend {metadata['backend']}, "
              f"precision {metadata['precision']}, input {metadata['compiled_input_shape']})")

        backend, differences = compare_with_eager(settings)
    except ProtoMTLError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    print(f"parity on {settings.frame.name}, {backend} program vs eager:")
    for name, difference in differences.items():
        print(f"  {name:8s} max abs difference {difference['max_abs']:.3g} "
              f"({difference['relative']:.3g} of max |eager| {difference['max_ref']:.3g})")

    failures = parity_failures(differences, settings.precision)
    for failure in failures:
        print(f"error: parity check failed, {failure}", file=sys.stderr)
    if failures:
        print(f"the artifact was written but does not match eager: {settings.output}",
              file=sys.stderr)
        return 1

    print("parity check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
