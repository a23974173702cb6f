"""The multi-task network: the task-prototype method and the plain multi-task baseline."""

import torch
from torch import nn

from .backbone import FusedBackbone
from .config import ModelConfig
from .decoders import ReconstructionDecoder, TaskDecoder, TaskHeads
from .prototypes import TaskPrototypes
from .quantizer import VectorQuantizer
from .retrieval import KnowledgeRetrieval
from .tasks import TASKS


class MultiTaskNet(nn.Module):
    """Shared backbone, one decoder per task and the task heads (variant "plain").

    In eval mode forward returns {"semseg", "depth", "normals"}; in train mode it adds
    "aux", which subclasses fill with their training-only outputs.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        channels = config.fused_channels
        self.backbone = FusedBackbone(config.backbone, channels, config.pretrained)
        self.task_decoders = nn.ModuleDict(
            {task: TaskDecoder(channels, config.decoder_blocks) for task in TASKS}
        )
        self.heads = TaskHeads(channels, config.num_classes, config.max_depth_m)

    def forward(self, x: torch.Tensor) -> dict:
        """Predict every task for a normalised image batch [B, 3, H, W]."""
        shared = self.backbone(x)
        task_features = {task: decoder(shared) for task, decoder in self.task_decoders.items()}
        outputs = self.heads(task_features, x.shape[-2:])
        if self.training:
            outputs["aux"] = {}
        return outputs

    def training_only_modules(self) -> list[nn.Module]:
        """Return the modules that the inference graph never runs."""
        return []

    def inference_graph(self) -> "InferenceGraph":
        """Return the export wrapper around this model (puts the model in eval mode)."""
        return InferenceGraph(self)


class ProtoMTLNet(MultiTaskNet):
    """Task-prototype knowledge retrieval network (variant "protomtl").

    f_e (fused backbone) -> f_i = f_e + VQ(f_e) -> task decoders f_t -> prototype affinity
    A -> knowledge retrieval transformer with keys/values from A . V -> heads. The
    reconstruction decoder reads f_i in train mode only.
    """

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        channels = config.fused_channels
        self.quantizer = VectorQuantizer(
            channels, config.vq_codebook_size, config.vq_code_dim, config.vq_mode,
            config.vq_beta, config.vq_ema_decay,
        )
        self.prototypes = TaskPrototypes(
            channels, len(TASKS), config.prototype_dim, config.prototype_temperature
        )
        self.retrieval = KnowledgeRetrieval(
            channels, config.prototype_dim, config.krt_blocks, config.krt_heads,
            config.krt_mlp_ratio, config.krt_keys, config.krt_stride,
        )
        self.reconstruction = ReconstructionDecoder(channels) if config.tae_enabled else None

    def forward(self, x: torch.Tensor) -> dict:
        """Predict every task for a normalised image batch [B, 3, H, W]."""
        shared = self.backbone(x)
        quantized, vq_loss = self.quantizer(shared)
        enhanced = shared + quantized

        refined = {}
        pooled_logits = []
        embeddings = []
        for task, decoder in self.task_decoders.items():
            task_feature = decoder(enhanced)
            match = self.prototypes(task_feature)
            if self.config.krt_keys == "pixels":
                knowledge = self.prototypes.retrieve(match["affinity"])
            else:
                knowledge = self.prototypes.retrieve_tokens(match["affinity"])
            refined[task] = self.retrieval(task_feature, knowledge)
            pooled_logits.append(match["pooled_logits"])
            embeddings.append(match["embedding"])

        outputs = self.heads(refined, x.shape[-2:])
        if self.training:
            aux = {
                "vq_loss": vq_loss,
                "affinity_logits": torch.stack(pooled_logits, dim=1),
                "task_embeddings": torch.stack(embeddings, dim=1),
            }
            if self.reconstruction is not None:
                aux["reconstruction"] = self.reconstruction(enhanced, x.shape[-2:])
            outputs["aux"] = aux
        return outputs

    def training_only_modules(self) -> list[nn.Module]:
        """Return the modules that the inference graph never runs."""
        return [self.reconstruction] if self.reconstruction is not None else []


class InferenceGraph(nn.Module):
    """Export wrapper: eval-mode forward returning (semseg_logits, depth, normals)."""

    def __init__(self, model: MultiTaskNet):
        super().__init__()
        self.model = model
        self.eval()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return the three predictions for a normalised image batch [B, 3, H, W]."""
        outputs = self.model(x)
        return outputs["semseg"], outputs["depth"], outputs["normals"]


def build_model(config: ModelConfig) -> MultiTaskNet:
    """Build the network that `config.variant` names."""
    if not isinstance(config, ModelConfig):
        raise TypeError(f"build_model expects a ModelConfig, got {type(config).__name__}")
    if config.variant == "plain":
        return MultiTaskNet(config)
    return ProtoMTLNet(config)


def count_parameters(config: ModelConfig) -> dict[str, int]:
    """Count parameters: the inference graph, the training-only extras and the total."""
    model = build_model(config.replace(pretrained=None))
    total = sum(p.numel() for p in model.parameters())
    extras = sum(
        p.numel() for module in model.training_only_modules() for p in module.parameters()
    )
    return {"inference": total - extras, "training_only": extras, "total": total}
