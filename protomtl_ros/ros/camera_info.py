"""Scaling of sensor_msgs/CameraInfo to another image resolution."""

import copy

from sensor_msgs.msg import CameraInfo

from protomtl_ros.runtime.errors import InputError


def scale_camera_info(info: CameraInfo, width: int, height: int, header=None) -> CameraInfo:
    """Return a copy of ``info`` describing the same camera at ``width`` x ``height`` pixels.

    Focal lengths, principal point and the projection's Tx/Ty terms scale by width / info.width
    and height / info.height, as image_proc's resize does. Distortion and rectification do not
    depend on resolution and are copied. ``header`` replaces the header when given.
    """
    if info.width == 0 or info.height == 0:
        raise InputError(
            f"camera_info has size {info.width}x{info.height}, so it cannot be scaled to "
            f"{width}x{height}; the camera driver must fill width and height"
        )
    if width < 1 or height < 1:
        raise InputError(f"cannot scale camera_info to an empty size {width}x{height}")
    if not (info.k[0] > 0 and info.k[4] > 0):
        raise InputError(
            f"camera_info K is invalid (fx={info.k[0]}, fy={info.k[4]}); the camera driver "
            "must publish its calibration"
        )

    scale_x = width / info.width
    scale_y = height / info.height
    scaled = copy.deepcopy(info)
    if header is not None:
        scaled.header = copy.deepcopy(header)
    scaled.width = width
    scaled.height = height

    # k is row-major 3x3: [fx 0 cx; 0 fy cy; 0 0 1].
    k = list(info.k)
    k[0] *= scale_x
    k[2] *= scale_x
    k[4] *= scale_y
    k[5] *= scale_y
    scaled.k = k

    # p is row-major 3x4: [fx' 0 cx' Tx; 0 fy' cy' Ty; 0 0 1 0], Tx = -fx' * baseline.
    p = list(info.p)
    p[0] *= scale_x
    p[2] *= scale_x
    p[3] *= scale_x
    p[5] *= scale_y
    p[6] *= scale_y
    p[7] *= scale_y
    scaled.p = p

    roi = scaled.roi
    roi.x_offset = int(round(info.roi.x_offset * scale_x))
    roi.y_offset = int(round(info.roi.y_offset * scale_y))
    roi.width = int(round(info.roi.width * scale_x))
    roi.height = int(round(info.roi.height * scale_y))
    return scaled
