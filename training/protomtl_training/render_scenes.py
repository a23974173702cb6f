"""Write a grid of procedural scenes (RGB, depth, labels, normals) as a PNG, or time them.

    PYTHONPATH=training:. python -m protomtl_training.render_scenes \\
        --output docs/images/scenes_grid.png --count 6
    OMP_NUM_THREADS=1 PYTHONPATH=training:. python -m protomtl_training.render_scenes \\
        --benchmark --count 100
"""

import argparse
import time

import numpy as np

from protomtl_training.data.scenes import (SPLIT_SEED_OFFSETS, ProceduralScenes, render_scene,
                                           scene_panels)


def write_grid(path: str, seeds, height: int, width: int, depth_holes: bool) -> None:
    """Write a PNG with one row per seed: RGB, depth, labels, normals."""
    from PIL import Image, ImageDraw

    gap = 4
    header = 16
    columns = ("RGB", "depth (0-8 m)", "labels", "normals")
    grid = Image.new("RGB", (4 * width + 5 * gap, header + len(seeds) * (height + gap) + gap),
                     (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for column, title in enumerate(columns):
        draw.text((gap + column * (width + gap), 2), title, fill=(0, 0, 0))
    for row, seed in enumerate(seeds):
        scene = render_scene(seed, height, width, depth_holes)
        for column, panel in enumerate(scene_panels(scene)):
            grid.paste(Image.fromarray(panel),
                       (gap + column * (width + gap), header + row * (height + gap)))
    grid.save(path)


def benchmark(count: int, height: int, width: int, depth_holes: bool) -> tuple:
    """Render `count` training scenes and return per-scene wall-clock and CPU seconds.

    CPU time is reported too because on a shared machine other processes stretch the
    wall-clock time.
    """
    render_scene(0, height, width, depth_holes)
    wall, cpu = [], []
    for seed in range(count):
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        render_scene(seed, height, width, depth_holes)
        wall.append(time.perf_counter() - wall_start)
        cpu.append(time.process_time() - cpu_start)
    return np.array(wall), np.array(cpu)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Render a grid of procedural scenes "
                                                 "(RGB, depth, labels, normals) as a PNG, "
                                                 "or time the renderer.")
    parser.add_argument("--output", help="PNG file to write the grid to")
    parser.add_argument("--count", type=int, default=6, help="number of scenes (default: 6)")
    parser.add_argument("--split", default="val", choices=sorted(SPLIT_SEED_OFFSETS),
                        help="split whose first scenes are drawn (default: val)")
    parser.add_argument("--first-seed-offset", type=int, default=0,
                        help="index of the first scene within the split (default: 0)")
    parser.add_argument("--height", type=int, default=288, help="image height (default: 288)")
    parser.add_argument("--width", type=int, default=384, help="image width (default: 384)")
    parser.add_argument("--no-depth-holes", action="store_true",
                        help="render depth without simulated sensor holes")
    parser.add_argument("--benchmark", action="store_true",
                        help="time --count renders instead of writing a grid")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error(f"--count must be at least 1, got {args.count}")
    if not args.benchmark and not args.output:
        parser.error("--output is required unless --benchmark is given")
    depth_holes = not args.no_depth_holes

    if args.benchmark:
        wall, cpu = benchmark(args.count, args.height, args.width, depth_holes)
        print(f"{args.count} scenes at {args.height}x{args.width}, per scene: wall-clock "
              f"median {np.median(wall) * 1e3:.1f} ms (max {wall.max() * 1e3:.1f}), "
              f"CPU median {np.median(cpu) * 1e3:.1f} ms (max {cpu.max() * 1e3:.1f})")
        return

    dataset = ProceduralScenes(args.split, args.count, args.height, args.width, depth_holes,
                               args.first_seed_offset)
    seeds = [dataset.seed(index) for index in range(args.count)]
    write_grid(args.output, seeds, args.height, args.width, depth_holes)
    print(f"wrote {args.output} ({args.count} scenes of split {args.split})")



if __name__ == "__main__":
    main()
