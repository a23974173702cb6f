"""Multi-task perception (depth, segmentation, surface normals) for ROS 2 robots."""

__version__ = "0.1.0"
