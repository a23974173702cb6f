"""Declaration and validation of the perception node's parameters."""

from dataclasses import dataclass, fields
import math

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
)
from rclpy.exceptions import ParameterException

from protomtl_ros.ros.qos import INPUT_RELIABILITY_CHOICES
from protomtl_ros.runtime.errors import ProtoMTLError

BACKEND_CHOICES = ("auto", "tensorrt", "aoti", "exported", "eager")
DEVICE_CHOICES = ("cpu", "cuda")
PUBLISH_COLOR_CHOICES = ("auto", "always", "never")


class ParameterError(ProtoMTLError):
    """A node parameter has a value the node cannot run with."""


@dataclass
class NodeSettings:
    """Parameters of the perception node, read once at start-up."""

    model_path: str = ""
    backend: str = "auto"
    device: str = "cpu"
    input_reliability: str = "best_effort"
    input_depth: int = 1
    output_depth: int = 5
    publish_color: str = "auto"
    max_depth_m: float = 10.0
    diagnostics_period_s: float = 1.0
    cpu_threads: int = 0


_DESCRIPTIONS = {
    "model_path": "Model file to load: an exported artifact (.pt2) or a training checkpoint.",
    "backend": "Inference backend: auto picks the fastest one the model file and device "
               f"support. One of {', '.join(BACKEND_CHOICES)}.",
    "device": f"Device that runs the network. One of {', '.join(DEVICE_CHOICES)}.",
    "input_reliability": "QoS reliability of the image and camera_info subscriptions: "
                         "best_effort (sensor-data profile, matches every publisher) or "
                         "reliable (matches reliable publishers only).",
    "input_depth": "Queue depth of the input subscriptions. Inference always takes the "
                   "newest frame, so 1 is enough unless the executor falls behind.",
    "output_depth": "Queue depth of the reliable output publishers.",
    "publish_color": "When to compute the colour images: auto (only while someone "
                     "subscribes), always or never.",
    "max_depth_m": "Depth beyond this many metres is published as NaN (invalid).",
    "diagnostics_period_s": "Seconds between /diagnostics reports.",
    "cpu_threads": "torch CPU threads for pre-processing and CPU inference; 0 keeps "
                   "PyTorch's default of one per core. Fewer threads than cores leave room "
                   "for other nodes on the same CPU.",
}

# Smallest accepted value of the integer parameters (the largest is 1000).
_INTEGER_MINIMUM = {"cpu_threads": 0}

_CHOICES = {
    "backend": BACKEND_CHOICES,
    "device": DEVICE_CHOICES,
    "input_reliability": INPUT_RELIABILITY_CHOICES,
    "publish_color": PUBLISH_COLOR_CHOICES,
}


def _descriptor(name: str, value) -> ParameterDescriptor:
    descriptor = ParameterDescriptor(description=_DESCRIPTIONS[name], read_only=True)
    if isinstance(value, str):
        descriptor.type = ParameterType.PARAMETER_STRING
        if name in _CHOICES:
            descriptor.additional_constraints = "one of: " + ", ".join(_CHOICES[name])
    elif isinstance(value, int):
        descriptor.type = ParameterType.PARAMETER_INTEGER
        minimum = _INTEGER_MINIMUM.get(name, 1)
        descriptor.integer_range = [IntegerRange(from_value=minimum, to_value=1000, step=1)]
    else:
        descriptor.type = ParameterType.PARAMETER_DOUBLE
        descriptor.floating_point_range = [
            FloatingPointRange(from_value=0.01, to_value=1000.0, step=0.0)
        ]
    return descriptor


def declare_settings(node) -> NodeSettings:
    """Declare every parameter on ``node`` and return their validated values."""
    defaults = NodeSettings()
    values = {}
    for field in fields(NodeSettings):
        default = getattr(defaults, field.name)
        try:
            parameter = node.declare_parameter(
                field.name, default, _descriptor(field.name, default)
            )
        except ParameterException as error:
            hint = ""
            if isinstance(default, float) and "of type 'INTEGER'" in str(error):
                hint = " Write a decimal point (10.0, not 10): this parameter is a double."
            raise ParameterError(
                f"parameter '{field.name}' is invalid: {error}.{hint} "
                f"{_DESCRIPTIONS[field.name]}"
            ) from error
        values[field.name] = parameter.value

    settings = NodeSettings(**values)
    validate_settings(settings)
    return settings


def validate_settings(settings: NodeSettings) -> None:
    """Raise ParameterError naming the first parameter whose value is unusable."""
    if not settings.model_path:
        raise ParameterError(
            "parameter 'model_path' is empty; set it to an exported model (.pt2) or a "
            "training checkpoint, e.g. --ros-args -p model_path:=/path/to/model.pt2. A "
            "parameter file applies only under the node's name: its top-level key must be "
            "protomtl_perception (or /** for every node)"
        )

    for name, choices in _CHOICES.items():
        value = getattr(settings, name)
        if value not in choices:
            raise ParameterError(
                f"parameter '{name}' is '{value}', which is invalid; use one of "
                f"{', '.join(choices)}"
            )

    if not math.isfinite(settings.max_depth_m) or settings.max_depth_m <= 0:
        raise ParameterError(
            f"parameter 'max_depth_m' is {settings.max_depth_m}; use a positive number of metres"
        )
