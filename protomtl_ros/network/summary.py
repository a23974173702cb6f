"""Print the parameter counts of the tiny, small and paper models."""

import argparse

from .config import SIZES, VARIANTS, ModelConfig
from .model import count_parameters


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", choices=VARIANTS, default="protomtl",
                        help="network variant (default: protomtl)")
    args = parser.parse_args(argv)

    print(f"{'size':<7}{'backbone':<10}{'C':>5}{'K':>6}{'d_q':>6}{'d':>6}"
          f"{'inference':>13}{'training-only':>15}{'total':>13}")
    for size in SIZES:
        config = ModelConfig.for_size(size, variant=args.variant)
        counts = count_parameters(config)
        print(f"{size:<7}{config.backbone:<10}{config.fused_channels:>5}"
              f"{config.vq_codebook_size:>6}{config.vq_code_dim:>6}{config.prototype_dim:>6}"
              f"{counts['inference']:>13,}{counts['training_only']:>15,}{counts['total']:>13,}")


if __name__ == "__main__":
    main()
