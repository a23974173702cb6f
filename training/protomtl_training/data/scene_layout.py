"""Random room layouts: room box, furniture built from parts, wall decorations, lights, camera.

Furniture is built in its own frame (origin at the footprint centre on the floor, +y is the
front) and then turned by a yaw and moved into the room. Footprints are kept apart with
axis-aligned rectangles, and a disc around the camera stays free.
"""

from dataclasses import dataclass, field

import numpy as np

from protomtl_ros.network.tasks import NYU13_CLASSES

from .scene_geometry import BOX, CYLINDER, SPHERE, Camera, Primitive

CLASS_ID = {name: index for index, name in enumerate(NYU13_CLASSES)}

# Walls in order of the room faces x = 0, x = size_x, y = 0, y = size_y. The yaw turns an
# item's +y (front) towards the room interior.
WALL_YAWS = (-np.pi / 2, np.pi / 2, 0.0, np.pi)
# The camera is placed near the y = 0 wall, so no furniture goes against that wall.
FURNISHED_WALLS = (0, 1, 3)

CAMERA_CLEARANCE_M = 0.55


@dataclass
class Surface:
    """Appearance of one room face."""

    label: int
    texture: str
    color: np.ndarray
    params: dict = field(default_factory=dict)


@dataclass
class Layout:
    """Everything needed to render one scene except the image size."""

    room_size: np.ndarray
    surfaces: list
    primitives: list
    camera: Camera
    lights: list
    ambient: np.ndarray


@dataclass
class _Footprint:
    x0: float
    x1: float
    y0: float
    y1: float

    def overlaps(self, other: "_Footprint", margin: float = 0.05) -> bool:
        return not (self.x1 + margin <= other.x0 or other.x1 + margin <= self.x0
                    or self.y1 + margin <= other.y0 or other.y1 + margin <= self.y0)


@dataclass
class _Support:
    """Top of a table or cabinet that small objects can stand on, in world coordinates."""

    center: np.ndarray
    half: np.ndarray
    yaw: float
    top_z: float


def _jitter(rng, color, amount=0.08):
    return np.clip(np.asarray(color) * rng.uniform(1 - amount, 1 + amount, 3), 0.0, 1.0)


def _part(kind, center, half, label, texture, color, params=None):
    return Primitive(kind=kind, center=np.asarray(center, dtype=np.float64),
                     half_size=np.asarray(half, dtype=np.float64), label=CLASS_ID[label],
                     texture=texture, color=np.asarray(color, dtype=np.float64),
                     params=params or {})


WOOD_COLORS = ((0.55, 0.36, 0.2), (0.7, 0.5, 0.3), (0.4, 0.25, 0.14), (0.8, 0.65, 0.45),
               (0.3, 0.2, 0.12))
PAINT_COLORS = ((0.92, 0.92, 0.9), (0.2, 0.2, 0.22), (0.6, 0.62, 0.65), (0.85, 0.8, 0.7),
                (0.45, 0.55, 0.6))
FABRIC_COLORS = ((0.6, 0.15, 0.15), (0.2, 0.3, 0.55), (0.35, 0.5, 0.3), (0.7, 0.65, 0.55),
                 (0.4, 0.4, 0.42), (0.75, 0.55, 0.2), (0.5, 0.3, 0.5), (0.15, 0.15, 0.15))
WALL_COLORS = ((0.9, 0.88, 0.82), (0.85, 0.85, 0.85), (0.8, 0.75, 0.65), (0.7, 0.78, 0.82),
               (0.85, 0.78, 0.7), (0.75, 0.8, 0.7), (0.95, 0.93, 0.88))


def _material(rng, kinds=("wood", "plain")):
    kind = kinds[rng.integers(len(kinds))]
    if kind == "wood":
        color = WOOD_COLORS[rng.integers(len(WOOD_COLORS))]
        return "wood", _jitter(rng, color), {"grain_per_m": rng.uniform(15, 40)}
    if kind == "fabric":
        color = FABRIC_COLORS[rng.integers(len(FABRIC_COLORS))]
        return "fabric", _jitter(rng, color), {"check_m": rng.choice([0.0, 0.0, 0.08, 0.15])}
    color = PAINT_COLORS[rng.integers(len(PAINT_COLORS))]
    return "plain", _jitter(rng, color), {}


def _legs(width, depth, height, thickness, inset, label, texture, color):
    parts = []
    for sx in (-1, 1):
        for sy in (-1, 1):
            x = sx * (width / 2 - inset - thickness / 2)
            y = sy * (depth / 2 - inset - thickness / 2)
            parts.append(_part(BOX, (x, y, height / 2), (thickness / 2, thickness / 2,
                                                         height / 2), label, texture, color))
    return parts


def build_table(rng):
    """Return (parts, footprint (w, d), support surface in local frame or None)."""
    texture, color, params = _material(rng)
    height = rng.uniform(0.68, 0.78)
    top = rng.uniform(0.025, 0.05)
    if rng.random() < 0.25:
        radius = rng.uniform(0.4, 0.6)
        parts = [
            _part(CYLINDER, (0, 0, height - top / 2), (radius, radius, top / 2), "table",
                  texture, color, params),
            _part(CYLINDER, (0, 0, (height - top) / 2), (0.05, 0.05, (height - top) / 2),
                  "table", texture, color, params),
        ]
        return parts, (2 * radius, 2 * radius), (np.zeros(2), np.array([radius, radius]) * 0.6,
                                                 height)
    width = rng.uniform(0.8, 1.6)
    depth = rng.uniform(0.6, min(0.95, width))
    parts = [_part(BOX, (0, 0, height - top / 2), (width / 2, depth / 2, top / 2), "table",
                   texture, color, params)]
    parts += _legs(width, depth, height - top, rng.uniform(0.04, 0.07), 0.03, "table",
                   texture, color)
    return parts, (width, depth), (np.zeros(2), np.array([width, depth]) / 2 * 0.8, height)


def build_chair(rng):
    texture, color, params = _material(rng, ("wood", "plain", "fabric"))
    width = rng.uniform(0.4, 0.5)
    depth = rng.uniform(0.4, 0.5)
    seat_h = rng.uniform(0.42, 0.48)
    seat_t = rng.uniform(0.03, 0.07)
    back_h = rng.uniform(0.35, 0.5)
    leg_t = rng.uniform(0.03, 0.05)
    parts = [_part(BOX, (0, 0, seat_h - seat_t / 2), (width / 2, depth / 2, seat_t / 2),
                   "chair", texture, color, params)]
    parts.append(_part(BOX, (0, -depth / 2 + 0.02, seat_h + back_h / 2),
                       (width / 2, 0.02, back_h / 2), "chair", texture, color, params))
    parts += _legs(width, depth, seat_h - seat_t, leg_t, 0.0, "chair", texture, color)
    return parts, (width, depth), None


def build_bed(rng):
    width = rng.uniform(0.9, 1.9)
    length = rng.uniform(1.95, 2.15)
    base_h = rng.uniform(0.2, 0.35)
    mattress_h = rng.uniform(0.15, 0.25)
    wood, wood_color, wood_params = _material(rng, ("wood", "plain"))
    sheet_color = _jitter(rng, FABRIC_COLORS[rng.integers(len(FABRIC_COLORS))], 0.15)
    pillow_color = _jitter(rng, (0.92, 0.92, 0.9), 0.05)
    top = base_h + mattress_h
    headboard_h = top + rng.uniform(0.35, 0.6)
    # The bed's head is at -y, against the wall, and +y is the foot end.
    parts = [
        _part(BOX, (0, 0, base_h / 2), (width / 2, length / 2, base_h / 2), "bed", wood,
              wood_color, wood_params),
        _part(BOX, (0, 0.02, base_h + mattress_h / 2), (width / 2 - 0.02, length / 2 - 0.03,
                                                        mattress_h / 2), "bed", "fabric",
              sheet_color, {"check_m": rng.choice([0.0, 0.1, 0.2])}),
        _part(BOX, (0, -length / 2 - 0.03, headboard_h / 2),
              (width / 2 + 0.03, 0.03, headboard_h / 2), "bed", wood, wood_color, wood_params),
    ]
    pillows = 1 if width < 1.3 else 2
    for index in range(pillows):
        x = 0.0 if pillows == 1 else (index - 0.5) * width / 2
        parts.append(_part(BOX, (x, -length / 2 + 0.25, top + 0.06),
                           (min(0.35, width / 2 / pillows - 0.05), 0.18, 0.06), "bed",
                           "fabric", pillow_color, {"check_m": 0.0}))
    return parts, (width, length + 0.1), None


def build_sofa(rng):
    texture, color, params = _material(rng, ("fabric", "fabric", "plain"))
    width = rng.uniform(1.4, 2.3)
    depth = rng.uniform(0.8, 1.0)
    seat_h = rng.uniform(0.38, 0.46)
    back_h = rng.uniform(0.75, 0.95)
    arm_h = rng.uniform(0.55, 0.68)
    arm_w = rng.uniform(0.1, 0.2)
    back_d = rng.uniform(0.15, 0.25)
    parts = [
        _part(BOX, (0, 0.0, seat_h / 2), (width / 2, depth / 2, seat_h / 2), "sofa", texture,
              color, params),
        _part(BOX, (0, -depth / 2 + back_d / 2, back_h / 2), (width / 2, back_d / 2,
                                                               back_h / 2), "sofa", texture,
              color, params),
    ]
    for side in (-1, 1):
        parts.append(_part(BOX, (side * (width / 2 - arm_w / 2), 0.0, arm_h / 2),
                           (arm_w / 2, depth / 2, arm_h / 2), "sofa", texture, color, params))
    return parts, (width, depth), None


def build_cabinet(rng, kind):
    """Build a dresser, nightstand, wardrobe, tv stand or bookshelf (class furniture)."""
    texture, color, params = _material(rng)
    params = dict(params, drawers=rng.integers(2, 5))
    sizes = {
        "nightstand": ((0.4, 0.55), (0.35, 0.45), (0.45, 0.65)),
        "dresser": ((0.8, 1.4), (0.4, 0.55), (0.7, 1.0)),
        "wardrobe": ((0.9, 1.6), (0.5, 0.65), (1.8, 2.2)),
        "tv_stand": ((1.0, 1.8), (0.35, 0.5), (0.4, 0.6)),
        "bookshelf": ((0.7, 1.2), (0.28, 0.38), (1.2, 2.0)),
    }[kind]
    width, depth, height = (rng.uniform(*limits) for limits in sizes)
    if kind != "bookshelf":
        parts = [_part(BOX, (0, 0, height / 2), (width / 2, depth / 2, height / 2),
                       "furniture", texture, color, params)]
        return parts, (width, depth), (np.zeros(2), np.array([width, depth]) / 2 * 0.8,
                                       height)

    board = 0.02
    parts = [_part(BOX, (0, -depth / 2 + board / 2, height / 2), (width / 2, board / 2,
                                                                  height / 2),
                   "furniture", texture, color, params)]
    for side in (-1, 1):
        parts.append(_part(BOX, (side * (width / 2 - board / 2), 0, height / 2),
                           (board / 2, depth / 2, height / 2), "furniture", texture, color,
                           params))
    shelves = int(rng.integers(3, 5))
    spacing = height / shelves
    for index in range(shelves + 1):
        z = min(index * spacing + board / 2, height - board / 2)
        parts.append(_part(BOX, (0, 0, z), (width / 2 - board, depth / 2, board / 2),
                           "furniture", texture, color, params))
        if index < shelves and rng.random() < 0.8:
            book_h = rng.uniform(0.18, min(0.3, spacing - 0.05))
            fill = rng.uniform(0.4, 0.95) * (width - 2 * board)
            x = -width / 2 + board + fill / 2 + rng.uniform(0, width - 2 * board - fill)
            parts.append(_part(BOX, (x, 0.02, z + board / 2 + book_h / 2),
                               (fill / 2, depth / 2 - 0.04, book_h / 2), "books", "spines",
                               np.ones(3), {"seed": int(rng.integers(1 << 30)),
                                            "spine_axis": 0}))
    return parts, (width, depth), None


def _place_parts(parts, position, yaw):
    c, s = np.cos(yaw), np.sin(yaw)
    rotation = np.array([[c, -s], [s, c]])
    for part in parts:
        part.center = np.array([*(position + rotation @ part.center[:2]), part.center[2]])
        part.yaw = part.yaw + yaw
    return parts


def _footprint(position, size, yaw):
    c, s = abs(np.cos(yaw)), abs(np.sin(yaw))
    half_x = (size[0] * c + size[1] * s) / 2
    half_y = (size[0] * s + size[1] * c) / 2
    return _Footprint(position[0] - half_x, position[0] + half_x,
                      position[1] - half_y, position[1] + half_y)


class _Planner:
    """Place items without overlapping footprints and collect their support surfaces."""

    def __init__(self, rng, room_size, camera_xy):
        self.rng = rng
        self.room = room_size
        self.primitives = []
        self.supports = []
        self.wall_spans = {wall: [] for wall in range(4)}
        self.taken = [_Footprint(camera_xy[0] - CAMERA_CLEARANCE_M,
                                 camera_xy[0] + CAMERA_CLEARANCE_M,
                                 camera_xy[1] - CAMERA_CLEARANCE_M,
                                 camera_xy[1] + CAMERA_CLEARANCE_M)]

    def _fits(self, footprint):
        inside = (footprint.x0 >= 0.01 and footprint.y0 >= 0.01
                  and footprint.x1 <= self.room[0] - 0.01 and footprint.y1 <= self.room[1] - 0.01)
        return inside and not any(footprint.overlaps(other) for other in self.taken)

    def _commit(self, parts, size, position, yaw, support):
        self.taken.append(_footprint(position, size, yaw))
        self.primitives.extend(_place_parts(parts, position, yaw))
        if support is not None:
            center, half, top_z = support
            c, s = np.cos(yaw), np.sin(yaw)
            world = position + np.array([[c, -s], [s, c]]) @ center
            self.supports.append(_Support(world, half, yaw, top_z))

    def wall_point(self, wall, along, out):
        """Return the floor point `along` metres along a wall and `out` metres into the room."""
        size_x, size_y = self.room[0], self.room[1]
        return {
            0: np.array([out, along]),
            1: np.array([size_x - out, size_y - along]),
            2: np.array([size_x - along, out]),
            3: np.array([along, size_y - out]),
        }[wall]

    def wall_length(self, wall):
        return self.room[1] if wall in (0, 1) else self.room[0]

    def place_against_wall(self, built, tries=12, top=None):
        parts, size, support = built
        for _ in range(tries):
            wall = FURNISHED_WALLS[self.rng.integers(len(FURNISHED_WALLS))]
            length = self.wall_length(wall)
            if size[0] + 0.1 > length:
                continue
            along = self.rng.uniform(size[0] / 2 + 0.05, length - size[0] / 2 - 0.05)
            yaw = WALL_YAWS[wall] + self.rng.normal(0, 0.03)
            position = self.wall_point(wall, along, size[1] / 2 + 0.03)
            if self._fits(_footprint(position, size, yaw)):
                self._commit(parts, size, position, yaw, support)
                height = max(p.center[2] + p.half_size[2] for p in parts) if top is None else top
                self.wall_spans[wall].append((along - size[0] / 2, along + size[0] / 2, 0.0,
                                              height))
                return wall, along, yaw
        return None

    def place_free(self, built, yaw=None, tries=12, margin=0.3):
        parts, size, support = built
        for _ in range(tries):
            position = np.array([self.rng.uniform(margin, self.room[0] - margin),
                                 self.rng.uniform(margin + 0.6, self.room[1] - margin)])
            item_yaw = self.rng.uniform(-np.pi, np.pi) if yaw is None else yaw
            if self._fits(_footprint(position, size, item_yaw)):
                self._commit(parts, size, position, item_yaw, support)
                return position, item_yaw
        return None

    def place_beside(self, built, anchor_position, anchor_yaw, offset, facing):
        parts, size, support = built
        c, s = np.cos(anchor_yaw), np.sin(anchor_yaw)
        position = anchor_position + np.array([[c, -s], [s, c]]) @ np.asarray(offset)
        yaw = anchor_yaw + facing + self.rng.normal(0, 0.08)
        if self._fits(_footprint(position, size, yaw)):
            self._commit(parts, size, position, yaw, support)
            return True
        return False

    def place_on_wall(self, wall, width, z0, z1, depth, label, texture, color, params):
        """Hang a thin panel on a wall unless it overlaps something already there."""
        length = self.wall_length(wall)
        if width + 0.2 > length:
            return False
        along = self.rng.uniform(width / 2 + 0.1, length - width / 2 - 0.1)
        for a0, a1, b0, b1 in self.wall_spans[wall]:
            if along - width / 2 < a1 + 0.05 and a0 - 0.05 < along + width / 2 \
                    and z0 < b1 + 0.05 and b0 - 0.05 < z1:
                return False
        position = self.wall_point(wall, along, depth / 2)
        part = _part(BOX, (0, 0, (z0 + z1) / 2), (width / 2, depth / 2, (z1 - z0) / 2), label,
                     texture, color, params)
        self.primitives.extend(_place_parts([part], position, WALL_YAWS[wall]))
        self.wall_spans[wall].append((along - width / 2, along + width / 2, z0, z1))
        return True


def _small_object(rng, base_xy, base_z):
    color = np.clip(rng.uniform(0.05, 1.0, 3) * rng.uniform(0.5, 1.0), 0, 1)
    kind = rng.integers(4)
    if kind == 0:
        radius = rng.uniform(0.03, 0.08)
        height = rng.uniform(0.08, 0.35)
        return [_part(CYLINDER, (*base_xy, base_z + height / 2), (radius, radius, height / 2),
                      "objects", "plain", color)]
    if kind == 1:
        half = rng.uniform(0.03, 0.12, 3)
        part = _part(BOX, (*base_xy, base_z + half[2]), half, "objects", "plain", color)
        part.yaw = rng.uniform(-np.pi, np.pi)
        return [part]
    if kind == 2:
        radius = rng.uniform(0.04, 0.1)
        return [_part(SPHERE, (*base_xy, base_z + radius), (radius, radius, radius), "objects",
                      "plain", color)]
    # A lamp: a thin stem under a cylindrical shade.
    stem = rng.uniform(0.2, 0.4)
    shade_r = rng.uniform(0.08, 0.15)
    shade_color = _jitter(rng, (0.95, 0.9, 0.75), 0.1)
    return [
        _part(CYLINDER, (*base_xy, base_z + stem / 2), (0.015, 0.015, stem / 2), "objects",
              "plain", color),
        _part(CYLINDER, (*base_xy, base_z + stem + 0.08), (shade_r, shade_r, 0.08), "objects",
              "plain", shade_color),
    ]


def _book_stack(rng, base_xy, base_z, yaw):
    width = rng.uniform(0.14, 0.25)
    depth = rng.uniform(0.18, 0.3)
    height = rng.uniform(0.03, 0.15)
    part = _part(BOX, (*base_xy, base_z + height / 2), (width / 2, depth / 2, height / 2),
                 "books", "spines", np.ones(3), {"seed": int(rng.integers(1 << 30)),
                                                 "spine_axis": 2})
    part.yaw = yaw + rng.normal(0, 0.3)
    return [part]


def _decorate_supports(planner, rng):
    for support in planner.supports:
        count = rng.integers(1, 5)
        c, s = np.cos(support.yaw), np.sin(support.yaw)
        for _ in range(count):
            local = rng.uniform(-1, 1, 2) * support.half
            xy = support.center + np.array([[c, -s], [s, c]]) @ local
            if rng.random() < 0.35:
                planner.primitives += _book_stack(rng, xy, support.top_z, support.yaw)
            else:
                planner.primitives += _small_object(rng, xy, support.top_z)


def _add_wall_decorations(planner, rng, has_tv):
    room_height = planner.room[2]
    walls = [int(w) for w in rng.permutation(FURNISHED_WALLS)]
    for wall in walls[: rng.integers(1, 3)]:
        width = rng.uniform(0.7, 1.6)
        z0 = rng.uniform(0.75, 1.0)
        z1 = min(room_height - 0.25, z0 + rng.uniform(1.0, 1.5))
        params = {"panes_x": int(rng.integers(1, 4)), "panes_y": int(rng.integers(1, 3)),
                  "sky": _jitter(rng, (0.75, 0.85, 1.0), 0.1),
                  "ground": _jitter(rng, (0.45, 0.55, 0.4), 0.3),
                  "horizon": rng.uniform(0.2, 0.5)}
        planner.place_on_wall(wall, width, z0, z1, 0.04, "window", "window",
                              _jitter(rng, (0.95, 0.95, 0.93), 0.05), params)
    if has_tv:
        width = rng.uniform(0.8, 1.4)
        z0 = rng.uniform(0.9, 1.2)
        planner.place_on_wall(walls[rng.integers(len(walls))], width, z0, z0 + width * 0.56,
                              0.06, "tv", "screen", np.array([0.03, 0.03, 0.035]),
                              {"on": bool(rng.random() < 0.3),
                               "seed": int(rng.integers(1 << 30))})
    for _ in range(rng.integers(1, 7)):
        width = rng.uniform(0.25, 1.0)
        height = width * rng.uniform(0.6, 1.4)
        z0 = rng.uniform(1.1, 1.6)
        z1 = min(room_height - 0.15, z0 + height)
        frame = _jitter(rng, WOOD_COLORS[rng.integers(len(WOOD_COLORS))] if rng.random() < 0.6
                        else PAINT_COLORS[rng.integers(len(PAINT_COLORS))])
        planner.place_on_wall(walls[rng.integers(len(walls))], width, z0, z1, 0.03,
                              "picture", "picture", frame, {"seed": int(rng.integers(1 << 30))})


def _add_tv_on_stand(planner, rng):
    parts, size, _ = build_cabinet(rng, "tv_stand")
    # No support surface: small objects would stand inside the TV.
    placed = planner.place_against_wall((parts, size, None))
    if placed is None:
        return False
    stand = planner.primitives[-1]
    width = min(rng.uniform(0.8, 1.3), 2 * stand.half_size[0] - 0.1)
    height = width * 0.58
    z0 = stand.center[2] + stand.half_size[2] + 0.05
    tv = _part(BOX, (0, -stand.half_size[1] / 2, z0 + height / 2), (width / 2, 0.03,
                                                                   height / 2),
               "tv", "screen", np.array([0.03, 0.03, 0.035]),
               {"on": bool(rng.random() < 0.3), "seed": int(rng.integers(1 << 30))})
    planner.primitives.extend(_place_parts([tv], stand.center[:2], stand.yaw))
    return True


def _furnish(planner, rng):
    room_type = rng.choice(["bedroom", "living", "dining", "office"])
    has_wall_tv = False
    if room_type == "bedroom":
        placed = planner.place_against_wall(build_bed(rng))
        if placed is not None and rng.random() < 0.7:
            planner.place_against_wall(build_cabinet(rng, "nightstand"))
        planner.place_against_wall(build_cabinet(rng, rng.choice(["dresser", "wardrobe"])))
        if rng.random() < 0.3:
            planner.place_against_wall(build_sofa(rng))
    elif room_type == "living":
        planner.place_against_wall(build_sofa(rng))
        table = build_table(rng)
        planner.place_free(table, yaw=rng.normal(0, 0.1))
        if rng.random() < 0.6:
            has_wall_tv = not _add_tv_on_stand(planner, rng)
        else:
            has_wall_tv = True
        if rng.random() < 0.5:
            planner.place_against_wall(build_cabinet(rng, "bookshelf"))
        if rng.random() < 0.4:
            planner.place_free(build_chair(rng))
    else:
        table = build_table(rng)
        placed = planner.place_free(table, yaw=rng.choice([0.0, np.pi / 2]) + rng.normal(0, 0.1))
        if placed is not None:
            position, yaw = placed
            width, depth = table[1]
            seats = [((0, depth / 2 + 0.3), np.pi), ((0, -depth / 2 - 0.3), 0.0),
                     ((width / 2 + 0.3, 0), np.pi / 2), ((-width / 2 - 0.3, 0), -np.pi / 2)]
            for index in rng.permutation(4)[: rng.integers(1, 4)]:
                offset, facing = seats[index]
                planner.place_beside(build_chair(rng), position, yaw, offset, facing)
        kinds = ["bookshelf", "dresser", "bookshelf"] if room_type == "office" else \
            ["dresser", "bookshelf"]
        for kind in kinds[: rng.integers(1, len(kinds) + 1)]:
            planner.place_against_wall(build_cabinet(rng, kind))
        has_wall_tv = rng.random() < 0.2
        if rng.random() < 0.25:
            planner.place_against_wall(build_sofa(rng))

    for _ in range(rng.integers(1, 5)):
        base = planner.place_free(([], (0.3, 0.3), None), margin=0.3)
        if base is not None:
            position, yaw = base
            if rng.random() < 0.25:
                planner.primitives += _book_stack(rng, position, 0.0, yaw)
            else:
                planner.primitives += _small_object(rng, position, 0.0)
    _decorate_supports(planner, rng)
    _add_wall_decorations(planner, rng, has_wall_tv)


def _room_surfaces(rng):
    wall_color = _jitter(rng, WALL_COLORS[rng.integers(len(WALL_COLORS))], 0.06)
    wall_texture = "wallpaper" if rng.random() < 0.25 else "plaster"
    wall_params = {"stripe_m": rng.uniform(0.05, 0.3),
                   "color2": _jitter(rng, wall_color * rng.uniform(0.8, 0.95), 0.05)}
    floor_kind = rng.choice(["planks", "tiles", "carpet"])
    if floor_kind == "planks":
        floor_color = _jitter(rng, WOOD_COLORS[rng.integers(len(WOOD_COLORS))])
        floor_params = {"plank_m": rng.uniform(0.1, 0.22), "length_m": rng.uniform(0.8, 1.8)}
    elif floor_kind == "tiles":
        floor_color = _jitter(rng, rng.choice([(0.8, 0.8, 0.78), (0.6, 0.55, 0.5),
                                               (0.35, 0.35, 0.38), (0.9, 0.85, 0.75)]))
        floor_params = {"tile_m": rng.uniform(0.25, 0.6)}
    else:
        floor_color = _jitter(rng, FABRIC_COLORS[rng.integers(len(FABRIC_COLORS))], 0.15)
        floor_params = {}
    ceiling_texture = "tiles" if rng.random() < 0.3 else "plaster"
    ceiling = Surface(CLASS_ID["ceiling"], ceiling_texture, _jitter(rng, (0.93, 0.93, 0.9), 0.04),
                      {"tile_m": 0.6})
    walls = [Surface(CLASS_ID["wall"], wall_texture, wall_color, wall_params)
             for _ in range(4)]
    floor = Surface(CLASS_ID["floor"], str(floor_kind), floor_color, floor_params)
    return walls + [floor, ceiling]


def sample_layout(rng: np.random.Generator) -> Layout:
    """Draw a furnished room, a camera inside it and the lights."""
    room_size = np.array([rng.uniform(2.8, 5.5), rng.uniform(3.0, 6.0), rng.uniform(2.4, 3.1)])
    camera_xy = np.array([rng.uniform(0.5, room_size[0] - 0.5), rng.uniform(0.25, 1.0)])
    surfaces = _room_surfaces(rng)

    planner = _Planner(rng, room_size, camera_xy)
    _furnish(planner, rng)

    # Look at a piece of furniture most of the time, otherwise at a random point ahead.
    if planner.primitives and rng.random() < 0.75:
        target = planner.primitives[rng.integers(len(planner.primitives))].center[:2]
    else:
        target = np.array([rng.uniform(0.15, 0.85) * room_size[0],
                           rng.uniform(0.55, 1.0) * room_size[1]])
    heading = target - camera_xy
    if np.hypot(*heading) < 0.3:
        heading = np.array([0.0, 1.0])
    camera = Camera(
        position=np.array([*camera_xy, rng.uniform(1.0, 1.8)]),
        yaw=float(np.arctan2(heading[1], heading[0]) + rng.normal(0, 0.2)),
        pitch=float(rng.uniform(-0.5, 0.12)),
    )

    lights = []
    for _ in range(rng.integers(1, 3)):
        position = np.array([rng.uniform(0.2, 0.8) * room_size[0],
                             rng.uniform(0.2, 0.8) * room_size[1], room_size[2] - 0.5])
        warm = rng.uniform(0.0, 0.15)
        lights.append((position, rng.uniform(0.6, 1.1) * np.array([1.0, 1.0 - warm / 2,
                                                                    1.0 - warm])))
    ambient = rng.uniform(0.25, 0.4) * _jitter(rng, (1.0, 1.0, 1.0), 0.05)
    return Layout(room_size, surfaces, planner.primitives, camera, lights, ambient)
