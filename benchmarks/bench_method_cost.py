"""Compare the inference and training-step cost of the method with the plain multi-task network.

Both variants are built at the same size and input resolution with random weights. Inference
is one batch-1 forward pass of the exportable inference graph. A training step is forward,
the multi-task loss of the training package (including the method's TAE, AKG and VQ terms),
backward and one Adam step. The two variants take turns within every repeat, so a change in
load from other processes affects both alike. Each figure is the median of the timed repeats.

    python benchmarks/bench_method_cost.py --output benchmarks/results/method_cost.json
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "training"))
sys.path.insert(0, str(REPO_ROOT))

from protomtl_ros.network import InferenceGraph, ModelConfig, build_model  # noqa: E402
from protomtl_ros.network.tasks import TASKS  # noqa: E402
from protomtl_training.config import LossConfig  # noqa: E402
from protomtl_training.losses import MultiTaskLoss  # noqa: E402

VARIANTS = ("protomtl", "plain")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="JSON file to write.")
    parser.add_argument("--size", default="tiny", choices=["tiny", "small", "paper"],
                        help="Model size. Default: tiny.")
    parser.add_argument("--height", type=int, default=288, help="Input height. Default: 288.")
    parser.add_argument("--width", type=int, default=384, help="Input width. Default: 384.")
    parser.add_argument("--batch", type=int, default=2,
                        help="Batch size of the training step. Default: 2.")
    parser.add_argument("--warmup", type=int, default=2, help="Untimed repeats. Default: 2.")
    parser.add_argument("--repeats", type=int, default=10, help="Timed repeats. Default: 10.")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads. Default: 1.")
    args = parser.parse_args(argv)

    if args.height % 32 or args.width % 32:
        parser.error(f"--height {args.height} --width {args.width}: use multiples of 32")
    if args.batch < 1 or args.warmup < 0 or args.repeats < 1 or args.threads < 1:
        parser.error("--batch, --repeats and --threads must be >= 1, --warmup >= 0")
    return args


def synthetic_batch(batch: int, height: int, width: int, num_classes: int) -> dict:
    """Return a fully labelled random batch in the layout the training loss expects."""
    generator = torch.Generator().manual_seed(0)
    normals = torch.randn(batch, 3, height, width, generator=generator)
    valid = torch.ones(batch, height, width, dtype=torch.bool)
    return {
        "image": torch.randn(batch, 3, height, width, generator=generator),
        "semseg": torch.randint(0, num_classes, (batch, height, width), generator=generator),
        "depth": torch.rand(batch, 1, height, width, generator=generator) * 5.0 + 0.5,
        "normals": torch.nn.functional.normalize(normals, dim=1),
        "valid": {task: valid for task in TASKS},
        "labelled": torch.ones(batch, len(TASKS)),
    }


class Variant:
    """One network variant with its inference graph, loss and optimiser."""

    def __init__(self, variant: str, args: argparse.Namespace):
        torch.manual_seed(0)
        config = ModelConfig.for_size(args.size, variant=variant, input_height=args.height,
                                      input_width=args.width, pretrained=None)
        self.model = build_model(config)
        self.graph = InferenceGraph(self.model)
        self.loss_fn = MultiTaskLoss(LossConfig())
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-4)
        self.num_classes = config.num_classes

    def infer(self, image: torch.Tensor):
        self.model.eval()
        with torch.inference_mode():
            self.graph(image)

    def train_step(self, batch: dict):
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        outputs = self.model(batch["image"])
        terms = self.loss_fn(outputs, batch)
        terms["total"].backward()
        self.optimizer.step()


def timed_ms(function, *inputs) -> float:
    start = time.perf_counter()
    function(*inputs)
    return (time.perf_counter() - start) * 1000.0


def measure(args: argparse.Namespace) -> dict:
    """Time inference and training steps of both variants, interleaved per repeat."""
    variants = {name: Variant(name, args) for name in VARIANTS}
    num_classes = variants["plain"].num_classes
    image = torch.randn(1, 3, args.height, args.width, generator=torch.Generator().manual_seed(1))
    batch = synthetic_batch(args.batch, args.height, args.width, num_classes)

    inference_ms = {name: [] for name in VARIANTS}
    train_step_ms = {name: [] for name in VARIANTS}
    for repeat in range(args.warmup + args.repeats):
        for name, variant in variants.items():
            infer = timed_ms(variant.infer, image)
            step = timed_ms(variant.train_step, batch)
            if repeat >= args.warmup:
                inference_ms[name].append(infer)
                train_step_ms[name].append(step)
        print(f"repeat {repeat + 1}/{args.warmup + args.repeats} done", flush=True)

    medians = {
        "inference_ms": {name: statistics.median(v) for name, v in inference_ms.items()},
        "train_step_ms": {name: statistics.median(v) for name, v in train_step_ms.items()},
    }
    return {
        "method_inference_ratio": (medians["inference_ms"]["protomtl"]
                                   / medians["inference_ms"]["plain"]),
        "method_train_step_ratio": (medians["train_step_ms"]["protomtl"]
                                    / medians["train_step_ms"]["plain"]),
        **medians,
        "settings": {
            "size": args.size,
            "input_hw": [args.height, args.width],
            "inference_batch": 1,
            "train_batch": args.batch,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "statistic": "median",
            "threads": args.threads,
            "optimizer": "Adam",
        },
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    result = measure(args)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    for kind in ("inference_ms", "train_step_ms"):
        values = result[kind]
        print(f"{kind}: method {values['protomtl']:.1f}, plain {values['plain']:.1f}")
    print(f"method_inference_ratio {result['method_inference_ratio']:.3f}, "
          f"method_train_step_ratio {result['method_train_step_ratio']:.3f}")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
