"""Training configuration: a schema of dataclasses read from YAML plus dotted overrides.

A misspelt key is an error that names the key and lists the accepted ones, never a silent
new attribute. The model section is validated by protomtl_ros.network.ModelConfig.
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
import types as types_module
import typing

import yaml

from protomtl_ros.network.config import ModelConfig

DATASETS = ("scenes", "nyuv2", "folder")
LABEL_SETTINGS = ("full", "onelabel", "randomlabels")
NORMALS_LOSSES = ("l1", "cosine")
DEVICES_HELP = "'cpu', 'cuda' or 'cuda:N'"


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the key."""


@dataclass
class DataConfig:
    """Datasets, partial-label setting and augmentation."""

    # "scenes": procedural indoor scenes; "nyuv2": MTAN .npy layout under root;
    # "folder": frames listed in a manifest file (see data/folder.py).
    dataset: str = "scenes"
    root: str | None = None
    manifest: str | None = None
    # Folder manifest whose frames are added to the main dataset (both splits).
    extra_manifest: str | None = None
    train_split: str = "train"
    val_split: str = "val"
    # Procedural scenes: number of scenes per split.
    num_train_scenes: int = 240
    num_val_scenes: int = 24
    depth_holes: bool = True
    # "full", "onelabel", "randomlabels" (generated with label_seed) or the path of a mask
    # file (.pth legacy dict with 'labels_weights', .json or .csv with columns
    # semseg, depth, normals).
    labels: str = "full"
    label_seed: int = 0
    # Augmentation of training images: zoom by s in [min, max] then crop, horizontal flip.
    augment: bool = True
    scale_min: float = 1.0
    scale_max: float = 1.5
    flip: bool = True
    # Sign applied to each axis of the NYUv2 normal files to reach the optical frame
    # (x right, y down, z forward, normals towards the camera).
    nyuv2_normal_signs: list = field(default_factory=lambda: [1.0, 1.0, 1.0])
    num_workers: int = 0

    def validate(self):
        _check_choice("data.dataset", self.dataset, DATASETS)
        if self.dataset == "nyuv2" and not self.root:
            raise ConfigError("data.root is required for data.dataset=nyuv2: set it to the "
                              "folder that contains train/ and val/")
        if self.dataset == "folder" and not self.manifest:
            raise ConfigError("data.manifest is required for data.dataset=folder: set it to "
                              "the manifest .yaml or .json file")
        if self.labels not in LABEL_SETTINGS and not Path(self.labels).suffix:
            raise ConfigError(
                f"data.labels={self.labels!r} is invalid: use one of {LABEL_SETTINGS} or the "
                "path of a .pth, .json or .csv mask file")
        if not 0.5 <= self.scale_min <= self.scale_max:
            raise ConfigError(f"data.scale_min={self.scale_min} and data.scale_max="
                              f"{self.scale_max} are invalid: use 0.5 <= min <= max")
        if len(self.nyuv2_normal_signs) != 3 or any(
                abs(s) != 1.0 for s in self.nyuv2_normal_signs):
            raise ConfigError(f"data.nyuv2_normal_signs={self.nyuv2_normal_signs} is invalid: "
                              "use three values, each 1 or -1")
        _check_positive("data.num_train_scenes", self.num_train_scenes)
        _check_positive("data.num_val_scenes", self.num_val_scenes)


@dataclass
class LossConfig:
    """Weights of the loss terms: sum_t w_t L_t + tae_weight L_TAE + akg_weight L_AKG + VQ."""

    semseg_weight: float = 1.0
    depth_weight: float = 1.0
    normals_weight: float = 1.0
    normals_loss: str = "l1"
    # Scale each sample's supervised loss by T / (number of labelled tasks of the sample).
    scale_by_labelled: bool = True
    tae_weight: float = 1.0
    akg_weight: float = 1.0
    vq_weight: float = 1.0
    triplet_margin: float = 0.3

    def validate(self):
        _check_choice("loss.normals_loss", self.normals_loss, NORMALS_LOSSES)
        for name in ("semseg_weight", "depth_weight", "normals_weight", "tae_weight",
                     "akg_weight", "vq_weight", "triplet_margin"):
            if getattr(self, name) < 0:
                raise ConfigError(f"loss.{name}={getattr(self, name)} is invalid: use >= 0")


@dataclass
class TrainConfig:
    """Optimiser, schedule, run length, logging and devices."""

    batch_size: int = 4
    # Run length: max_steps when > 0, else epochs full passes over the training set.
    epochs: int = 200
    max_steps: int = 0
    # Adam with lr 2e-5 as reported for the method on NYUv2 (ResNet-18, batch 4).
    lr: float = 2e-5
    weight_decay: float = 1e-6
    # Poly schedule: lr * (1 - step / total_steps) ** poly_power.
    poly_power: float = 0.9
    grad_clip_norm: float = 10.0
    seed: int = 0
    device: str = "cpu"
    amp: bool = False
    # Emit a progress line every log_every steps; evaluate every eval_every_epochs epochs.
    log_every: int = 10
    eval_every_epochs: int = 1
    # Also write last.pt every checkpoint_every_steps steps (0 = only after evaluations).
    checkpoint_every_steps: int = 0
    best_metric: str = "semseg.miou"
    best_mode: str = "max"
    num_panels: int = 4
    deterministic: bool = False
    ddp_find_unused_parameters: bool = False
    # torch CPU threads per process; 0 keeps PyTorch's default (one per core). On a CPU that
    # other jobs share, fewer threads than cores avoid threads waiting on each other.
    cpu_threads: int = 0

    def validate(self):
        for name in ("batch_size", "epochs", "log_every", "eval_every_epochs"):
            _check_positive(f"train.{name}", getattr(self, name))
        if min(self.max_steps, self.checkpoint_every_steps, self.num_panels,
               self.cpu_threads) < 0:
            raise ConfigError("train.max_steps, train.checkpoint_every_steps, "
                              "train.num_panels and train.cpu_threads must be >= 0")
        if self.lr <= 0:
            raise ConfigError(f"train.lr={self.lr} is invalid: use a value > 0")
        _check_choice("train.best_mode", self.best_mode, ("max", "min"))
        if not (self.device == "cpu" or self.device == "cuda"
                or self.device.startswith("cuda:")):
            raise ConfigError(f"train.device={self.device!r} is invalid: use {DEVICES_HELP}")


@dataclass
class Config:
    """The whole training configuration, as saved next to each run and in each checkpoint."""

    model: dict = field(default_factory=lambda: {"size": "tiny"})
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def model_config(self) -> ModelConfig:
        """Build the validated network config of this run."""
        return ModelConfig.from_dict(dict(self.model))

    def validate(self):
        try:
            self.model_config()
        except ValueError as error:
            raise ConfigError(f"model: {error}") from error
        self.data.validate()
        self.loss.validate()
        self.train.validate()

    def to_dict(self) -> dict:
        """Return plain dicts, lists and scalars only (YAML- and weights_only-safe)."""
        return dataclasses.asdict(self)


SECTIONS = {"data": DataConfig, "loss": LossConfig, "train": TrainConfig}


def config_from_dict(values: dict) -> Config:
    """Build and validate a Config from nested plain dicts; unknown keys raise ConfigError."""
    if not isinstance(values, dict):
        raise ConfigError(f"the config must be a mapping, got {type(values).__name__}")

    accepted = ("model",) + tuple(SECTIONS)
    unknown = sorted(set(values) - set(accepted))
    if unknown:
        raise ConfigError(f"unknown config section(s) {unknown}; accepted: {list(accepted)}")

    sections = {}
    for name, cls in SECTIONS.items():
        section = values.get(name) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"config section {name!r} must be a mapping")
        known = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(section) - known)
        if bad:
            raise ConfigError(
                f"unknown key(s) {[f'{name}.{key}' for key in bad]}; accepted keys in "
                f"{name}: {sorted(known)}")
        sections[name] = cls(**{key: _coerce(name, cls, key, value)
                                 for key, value in section.items()})

    model = values.get("model") or {"size": "tiny"}
    if not isinstance(model, dict):
        raise ConfigError("config section 'model' must be a mapping")
    config = Config(model=dict(model), **sections)
    config.validate()
    return config


def load_config(path=None, overrides=()) -> Config:
    """Read a YAML file (or the defaults when path is None) and apply key=value overrides."""
    values = Config().to_dict()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        with open(path) as stream:
            loaded = yaml.safe_load(stream) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
        for section, content in loaded.items():
            if section in values and isinstance(values[section], dict) and section != "model":
                if not isinstance(content, dict):
                    raise ConfigError(f"{path}: section {section!r} must be a mapping")
                values[section].update(content)
            else:
                values[section] = content

    for override in overrides:
        apply_override(values, override)
    return config_from_dict(values)


def apply_override(values: dict, override: str):
    """Set one dotted key=value (value parsed as YAML) in nested dicts, in place."""
    if "=" not in override:
        raise ConfigError(f"override {override!r} is invalid: use section.key=value, "
                          "for example train.max_steps=50")
    key, text = override.split("=", 1)
    parts = key.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"override key {key!r} is invalid: use section.key, "
                          "for example train.lr=1e-4")
    section, name = parts
    if section not in values:
        raise ConfigError(f"unknown config section {section!r} in override {override!r}; "
                          f"accepted: {sorted(values)}")
    if section != "model" and name not in values[section]:
        raise ConfigError(f"unknown key {key!r} in override {override!r}; accepted keys in "
                          f"{section}: {sorted(values[section])}")
    values[section][name] = yaml.safe_load(text)


def save_config(config: Config, path):
    """Write the resolved config as YAML."""
    with open(path, "w") as stream:
        yaml.safe_dump(config.to_dict(), stream, sort_keys=False)


def _coerce(section: str, cls, key: str, value):
    """Check `value` against the type of the field `key`; convert numbers written as text."""
    annotation = cls.__dataclass_fields__[key].type
    types = typing.get_args(annotation) if isinstance(annotation, types_module.UnionType) else (
        annotation,)
    name = f"{section}.{key}"
    if value is None:
        if type(None) in types:
            return None
        raise ConfigError(f"{name} needs a value; remove the key to use the default")
    if bool in types:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name}={value!r} is invalid: use true or false")
    if isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} is invalid: expected {_type_names(types)}")
    if int in types:
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(f"{name}={value!r} is invalid: use an integer")
    if float in types:
        # PyYAML reads '1e-4' (no dot) as a string, so numbers in text are converted here.
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}={value!r} is invalid: use a number") from None
    if not isinstance(value, tuple(t for t in types if t is not type(None))):
        raise ConfigError(f"{name}={value!r} is invalid: expected {_type_names(types)}")
    return value


_TYPE_NAMES = {str: "text", int: "an integer", float: "a number", bool: "true or false",
               list: "a list", type(None): "null"}


def _type_names(types) -> str:
    return " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)


def _check_choice(name, value, accepted):
    if value not in accepted:
        raise ConfigError(f"{name}={value!r} is invalid; accepted values: {list(accepted)}")


def _check_positive(name, value):
    if not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}={value!r} is invalid: use a positive integer")
