"""Task names and the NYUv2 13-class label set shared by every part of the package."""

# Order matches the columns of the published partial-label mask files: semantic, depth, normal.
TASKS = ("semseg", "depth", "normals")

# NYUv2 13-class set (Couprie et al. 2013 mapping), ids 0..12. Datasets store void as 255.
NYU13_CLASSES = (
    "bed", "books", "ceiling", "chair", "floor", "furniture", "objects",
    "picture", "sofa", "table", "tv", "wall", "window",
)

IGNORE_INDEX = 255

# One RGB colour per class id, chosen to be distinct on screen.
NYU13_PALETTE = (
    (0, 0, 255), (232, 88, 47), (0, 217, 0), (148, 0, 240), (222, 241, 23),
    (255, 205, 205), (0, 223, 228), (106, 135, 204), (116, 28, 41), (240, 35, 235),
    (0, 166, 156), (249, 139, 0), (225, 228, 194),
)
