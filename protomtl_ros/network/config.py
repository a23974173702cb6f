"""Model configuration: the network sizes and every design choice as a validated field."""

from dataclasses import asdict, dataclass, fields, replace

from .tasks import NYU13_CLASSES

VARIANTS = ("protomtl", "plain")
SIZES = ("tiny", "small", "paper")
BACKBONES = ("resnet18", "resnet34", "resnet50")
VQ_MODES = ("loss", "ema")
KRT_KEYS = ("tokens", "pixels")
KRT_STRIDES = (8, 16)


@dataclass
class ModelConfig:
    """Network hyper-parameters; the defaults are the `tiny` size."""

    variant: str = "protomtl"
    size: str = "tiny"
    backbone: str = "resnet18"
    # None (random init), "imagenet" (torchvision weight enum) or a path to a local .pth file.
    pretrained: str | None = None
    num_classes: int = len(NYU13_CLASSES)
    input_height: int = 288
    input_width: int = 384
    # Depth head output is max_depth_m * sigmoid(logit), so it lies in (0, max_depth_m).
    min_depth_m: float = 0.0
    max_depth_m: float = 10.0

    # Shared feature f_e: channels C after fusing the four backbone stages at stride 8.
    fused_channels: int = 64

    # Vector quantisation: K entries of dimension d_q, 1x1 projections when C != d_q.
    vq_codebook_size: int = 256
    vq_code_dim: int = 64
    vq_mode: str = "loss"
    vq_beta: float = 0.25
    vq_ema_decay: float = 0.99

    # Task-agnostic enhancement: image reconstruction decoder, used in training only.
    tae_enabled: bool = True

    # Task decoders: residual basic blocks per task.
    decoder_blocks: int = 2

    # Task prototypes: T vectors of dimension d, cosine affinity softmax(cos / temperature).
    prototype_dim: int = 64
    prototype_temperature: float = 0.1

    # Knowledge retrieval transformer: pre-norm blocks of self- and cross-attention.
    krt_blocks: int = 2
    krt_heads: int = 8
    krt_mlp_ratio: float = 4.0
    krt_keys: str = "tokens"
    krt_stride: int = 16

    def __post_init__(self):
        """Validate every field, naming the bad value and the accepted ones."""
        _check_choice("variant", self.variant, VARIANTS)
        _check_choice("size", self.size, SIZES + ("custom",))
        _check_choice("backbone", self.backbone, BACKBONES)
        _check_choice("vq_mode", self.vq_mode, VQ_MODES)
        _check_choice("krt_keys", self.krt_keys, KRT_KEYS)
        _check_choice("krt_stride", self.krt_stride, KRT_STRIDES)

        if self.pretrained is not None and not isinstance(self.pretrained, str):
            raise ValueError(
                f"pretrained={self.pretrained!r} is invalid: use null (random init), "
                "'imagenet' or the path to a local .pth file"
            )

        if not 1 <= self.num_classes <= 255:
            raise ValueError(
                f"num_classes={self.num_classes} is invalid: class ids are published as "
                "uint8 with 255 reserved for void, so use 1..255"
            )

        for name in ("input_height", "input_width"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 32 or value % 32 != 0:
                raise ValueError(
                    f"{name}={value!r} is invalid: use a positive multiple of 32 "
                    "(the backbone's output stride)"
                )

        if not 0.0 <= self.min_depth_m < self.max_depth_m:
            raise ValueError(
                f"depth range [{self.min_depth_m}, {self.max_depth_m}] m is invalid: "
                "use 0 <= min_depth_m < max_depth_m"
            )

        for name in ("fused_channels", "vq_codebook_size", "vq_code_dim", "prototype_dim",
                     "krt_heads", "krt_blocks", "decoder_blocks"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} is invalid: use a positive integer")

        if self.fused_channels % self.krt_heads != 0:
            raise ValueError(
                f"fused_channels={self.fused_channels} is not divisible by "
                f"krt_heads={self.krt_heads}: attention splits the channels evenly per head"
            )

        for name in ("vq_beta", "prototype_temperature", "krt_mlp_ratio"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)!r} is invalid: use a value > 0")

        if not 0.0 < self.vq_ema_decay < 1.0:
            raise ValueError(f"vq_ema_decay={self.vq_ema_decay!r} is invalid: use 0 < decay < 1")

    @classmethod
    def for_size(cls, size: str, **overrides) -> "ModelConfig":
        """Build the config of a named size, with some fields overridden."""
        _check_choice("size", size, SIZES)
        values = dict(SIZE_PRESETS[size], size=size)
        values.update(overrides)
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values: dict) -> "ModelConfig":
        """Build a config from a plain dict; missing fields take the defaults of its size."""
        if not isinstance(values, dict):
            raise ValueError(f"model config must be a mapping, got {type(values).__name__}")

        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown model config key(s) {unknown}; accepted keys: {sorted(known)}"
            )

        size = values.get("size", "tiny")
        base = dict(SIZE_PRESETS.get(size, {}))
        base.update(values)
        return cls(**base)

    def to_dict(self) -> dict:
        """Return the config as a plain dict that from_dict reads back unchanged."""
        return asdict(self)

    def replace(self, **changes) -> "ModelConfig":
        """Return a copy with some fields changed (validated again)."""
        return replace(self, **changes)


def _check_choice(name, value, accepted):
    if value not in accepted:
        raise ValueError(
            f"{name}={value!r} is invalid; accepted values: {', '.join(map(repr, accepted))}"
        )


# tiny: CPU tests and the demo. small: the real-time target on a Jetson Orin class device.
# paper: C = 512, K = 4096, d_q = 1024, d = 1024, with per-pixel keys at stride 8.
SIZE_PRESETS = {
    "tiny": dict(
        backbone="resnet18", fused_channels=64, vq_codebook_size=256, vq_code_dim=64,
        prototype_dim=64, krt_keys="tokens", krt_stride=16,
    ),
    "small": dict(
        backbone="resnet18", fused_channels=128, vq_codebook_size=512, vq_code_dim=128,
        prototype_dim=256, krt_keys="tokens", krt_stride=16,
    ),
    "paper": dict(
        backbone="resnet18", fused_channels=512, vq_codebook_size=4096, vq_code_dim=1024,
        prototype_dim=1024, krt_keys="pixels", krt_stride=8,
    ),
}
