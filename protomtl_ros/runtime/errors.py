"""The package exception types raised at the runtime boundary."""


class ProtoMTLError(Exception):
    """Base class of every error that protomtl_ros raises on purpose."""


class ModelLoadError(ProtoMTLError):
    """A model file is missing, truncated, of the wrong kind or incompatible."""


class InputError(ProtoMTLError):
    """An input image has the wrong type, shape or dtype."""


class InvalidOutputError(ProtoMTLError):
    """The network produced values that must not be published (NaN, Inf, unknown class)."""
