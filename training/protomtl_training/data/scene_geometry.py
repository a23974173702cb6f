"""Camera rays, solid primitives and vectorised ray casting for the procedural scenes.

World frame: x and y span the floor, z points up, the floor is z = 0. Rays are not
normalised: each ray direction has optical-frame z component 1, so the hit parameter t of
a ray is the z-depth of the hit in metres.
"""

from dataclasses import dataclass, field

import numpy as np

# NYUv2 Kinect colour intrinsics at 640 x 480, as in data/samples/real/nyu_0551/camera.json.
NYU_WIDTH = 640
NYU_HEIGHT = 480
NYU_FX = 518.858
NYU_FY = 519.470
NYU_CX = 325.582
NYU_CY = 253.736

# Hits closer than this along a ray are ignored, so a surface never occludes itself.
MIN_HIT_T = 1e-4

BOX = 0
CYLINDER = 1
SPHERE = 2


@dataclass
class Camera:
    """Pinhole camera pose in the world frame: yaw about +z from +x, pitch positive upwards."""

    position: np.ndarray
    yaw: float
    pitch: float

    def rotation(self) -> np.ndarray:
        """Return the 3x3 matrix whose columns are the optical x, y, z axes in the world."""
        forward = np.array([
            np.cos(self.pitch) * np.cos(self.yaw),
            np.cos(self.pitch) * np.sin(self.yaw),
            np.sin(self.pitch),
        ])
        right = np.array([np.sin(self.yaw), -np.cos(self.yaw), 0.0])
        down = np.cross(forward, right)
        return np.stack([right, down, forward], axis=1)


@dataclass
class Primitive:
    """A solid with a label and a surface description.

    Boxes use half_size (x, y, z) in their own frame, turned by yaw about +z around center.
    Cylinders are vertical: radius = half_size[0], half height = half_size[2].
    Spheres use radius = half_size[0].
    """

    kind: int
    center: np.ndarray
    half_size: np.ndarray
    label: int
    texture: str
    color: np.ndarray
    yaw: float = 0.0
    params: dict = field(default_factory=dict)


def scaled_intrinsics(height: int, width: int) -> tuple:
    """Return (fx, fy, cx, cy) of the NYU Kinect colour camera resized to width x height."""
    sx = width / NYU_WIDTH
    sy = height / NYU_HEIGHT
    # Pixel centres are at integer coordinates, so the principal point scales about -0.5.
    cx = (NYU_CX + 0.5) * sx - 0.5
    cy = (NYU_CY + 0.5) * sy - 0.5
    return (NYU_FX * sx, NYU_FY * sy, cx, cy)


def pixel_ray_slopes(height: int, width: int, intrinsics: tuple) -> tuple:
    """Return the optical-frame x/z slope of each column and y/z slope of each row."""
    fx, fy, cx, cy = intrinsics
    u = (np.arange(width, dtype=np.float32) - np.float32(cx)) / np.float32(fx)
    v = (np.arange(height, dtype=np.float32) - np.float32(cy)) / np.float32(fy)
    return u, v


def world_rays(camera: "Camera", height: int, width: int, intrinsics: tuple) -> tuple:
    """Return the world-frame ray direction components (dx, dy, dz), each HxW float32."""
    u, v = pixel_ray_slopes(height, width, intrinsics)
    rotation = camera.rotation().astype(np.float32)
    return tuple(rotation[axis, 0] * u[None, :] + rotation[axis, 1] * v[:, None]
                 + rotation[axis, 2] for axis in range(3))


def _yaw_matrix(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def primitive_corners(prim: Primitive) -> np.ndarray:
    """Return the 8 corners (8x3) of a box that encloses the primitive, in the world frame."""
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    half = prim.half_size
    if prim.kind != BOX:
        half = np.array([half[0], half[0], half[2] if prim.kind == CYLINDER else half[0]])
    return prim.center + (signs * half) @ _yaw_matrix(prim.yaw).T


def screen_rect(corners_world: np.ndarray, camera_position: np.ndarray,
                camera_rotation: np.ndarray, intrinsics: tuple, height: int, width: int):
    """Return (row0, row1, col0, col1) of the pixels the corners can cover, or None.

    The full image is returned when a corner lies behind or very close to the camera,
    because the projection is then unbounded.
    """
    local = (corners_world - camera_position) @ camera_rotation
    z = local[:, 2]
    if np.all(z <= 0.0):
        return None
    if np.any(z < 0.05):
        return (0, height, 0, width)
    fx, fy, cx, cy = intrinsics
    u = fx * local[:, 0] / z + cx
    v = fy * local[:, 1] / z + cy
    col0 = max(int(np.floor(u.min())) - 1, 0)
    col1 = min(int(np.ceil(u.max())) + 2, width)
    row0 = max(int(np.floor(v.min())) - 1, 0)
    row1 = min(int(np.ceil(v.max())) + 2, height)
    if col0 >= col1 or row0 >= row1:
        return None
    return (row0, row1, col0, col1)


def _safe_inverse(d: np.ndarray) -> np.ndarray:
    tiny = np.float32(1e-12)
    return np.float32(1.0) / np.where(np.abs(d) < tiny, tiny, d)


def intersect_room_interior(origin: np.ndarray, dirs: tuple, room_size: np.ndarray):
    """Return (t, face) where each ray leaves the room box [0, size] seen from inside.

    face (int16) is 0..5 for x = 0, x = size_x, y = 0, y = size_y, floor, ceiling.
    """
    t_axes = []
    face_axes = []
    for axis in range(3):
        d = dirs[axis]
        # A zero component counts as positive, matching _safe_inverse, so t is +huge there.
        positive = d >= 0
        bound = np.where(positive, np.float32(room_size[axis]), np.float32(0.0))
        t_axes.append((bound - np.float32(origin[axis])) * _safe_inverse(d))
        face_axes.append(positive.astype(np.int16) + np.int16(2 * axis))
    tx, ty, tz = t_axes
    x_first = (tx <= ty) & (tx <= tz)
    face = np.where(x_first, face_axes[0], np.where(ty <= tz, face_axes[1], face_axes[2]))
    t = np.minimum(np.minimum(tx, ty), tz)
    return t, face


def _to_local(prim: Primitive, origin: np.ndarray, dirs: tuple):
    """Return the ray origin (3,) and direction components (x, y, z arrays) in the prim frame."""
    c, s = np.float32(np.cos(prim.yaw)), np.float32(np.sin(prim.yaw))
    offset = origin - prim.center
    local_origin = np.array([
        c * offset[0] + s * offset[1],
        -s * offset[0] + c * offset[1],
        offset[2],
    ], dtype=np.float32)
    dx, dy, dz = dirs
    if prim.yaw == 0.0:
        return local_origin, (dx, dy, dz)
    return local_origin, (c * dx + s * dy, -s * dx + c * dy, dz)


def _intersect_box(prim: Primitive, origin: np.ndarray, dirs: tuple) -> np.ndarray:
    local_origin, local_dirs = _to_local(prim, origin, dirs)
    t_near = None
    t_far = None
    for axis in range(3):
        inv = _safe_inverse(local_dirs[axis])
        half = np.float32(prim.half_size[axis])
        t1 = (-half - local_origin[axis]) * inv
        t2 = (half - local_origin[axis]) * inv
        near = np.minimum(t1, t2)
        far = np.maximum(t1, t2)
        t_near = near if t_near is None else np.maximum(t_near, near)
        t_far = far if t_far is None else np.minimum(t_far, far)
    hit = (t_near <= t_far) & (t_near > MIN_HIT_T)
    return np.where(hit, t_near, np.inf)


def _intersect_cylinder(prim: Primitive, origin: np.ndarray, dirs: tuple) -> np.ndarray:
    local_origin, (dx, dy, dz) = _to_local(prim, origin, dirs)
    ox, oy, oz = local_origin
    radius = np.float32(prim.half_size[0])
    half_height = np.float32(prim.half_size[2])

    # Side wall: the smaller root of |o_xy + t d_xy|^2 = r^2, kept where it lies between caps.
    a = dx * dx + dy * dy
    b = ox * dx + oy * dy
    c = np.float32(ox * ox + oy * oy - radius * radius)
    disc = b * b - a * c
    root = np.sqrt(np.maximum(disc, 0.0))
    t_side = (-b - root) / np.maximum(a, np.float32(1e-12))
    z_side = oz + t_side * dz
    side_ok = (disc >= 0) & (np.abs(z_side) <= half_height) & (t_side > MIN_HIT_T)
    t = np.where(side_ok, t_side, np.inf)

    # Cap facing the ray origin: top cap when looking down on it, bottom cap otherwise.
    cap_z = np.float32(half_height if oz > 0 else -half_height)
    t_cap = (cap_z - oz) * _safe_inverse(dz)
    cap_x = ox + t_cap * dx
    cap_y = oy + t_cap * dy
    cap_ok = (cap_x * cap_x + cap_y * cap_y <= radius * radius) & (t_cap > MIN_HIT_T)
    return np.where(cap_ok, np.minimum(t, t_cap), t)


def _intersect_sphere(prim: Primitive, origin: np.ndarray, dirs: tuple) -> np.ndarray:
    offset = (origin - prim.center).astype(np.float32)
    dx, dy, dz = dirs
    radius = np.float32(prim.half_size[0])
    a = dx * dx + dy * dy + dz * dz
    b = offset[0] * dx + offset[1] * dy + offset[2] * dz
    c = np.float32(offset @ offset - radius * radius)
    disc = b * b - a * c
    t = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
    return np.where((disc >= 0) & (t > MIN_HIT_T), t, np.inf)


INTERSECTORS = {BOX: _intersect_box, CYLINDER: _intersect_cylinder, SPHERE: _intersect_sphere}


def intersect_primitive(prim: Primitive, origin: np.ndarray, dirs: tuple) -> np.ndarray:
    """Return the hit parameter t of each ray (inf on a miss); dirs is a (dx, dy, dz) tuple."""
    return INTERSECTORS[prim.kind](prim, origin, dirs)


def primitive_normals(prim: Primitive, points: np.ndarray) -> tuple:
    """Return world-frame outward unit normals (Nx3) and local hit points (Nx3) of a primitive.

    The face of a box is the one whose slab the local point is closest to leaving.
    """
    rotation = _yaw_matrix(prim.yaw)
    local = (points - prim.center) @ rotation
    if prim.kind == BOX:
        ratio = np.abs(local) / prim.half_size
        axis = np.argmax(ratio, axis=1)
        normal_local = np.zeros_like(local)
        rows = np.arange(len(local))
        normal_local[rows, axis] = np.sign(local[rows, axis])
    elif prim.kind == CYLINDER:
        radius, half_height = prim.half_size[0], prim.half_size[2]
        radial = np.hypot(local[:, 0], local[:, 1])
        on_cap = (np.abs(local[:, 2]) / half_height) > (radial / radius)
        normal_local = np.zeros_like(local)
        normal_local[:, 0] = np.where(on_cap, 0.0, local[:, 0])
        normal_local[:, 1] = np.where(on_cap, 0.0, local[:, 1])
        normal_local[:, 2] = np.where(on_cap, np.sign(local[:, 2]), 0.0)
    else:
        normal_local = local.copy()
    normal_local /= np.maximum(np.linalg.norm(normal_local, axis=1, keepdims=True), 1e-9)
    return normal_local @ rotation.T, local
