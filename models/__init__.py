"""PyTorch models of brainfm (never imports dagster: this package runs on GPU machines without it).

Stage 1: the hybrid ViT + ConvNeXt encoder and its MAE pretraining.
"""

from models.checkpoint import load_encoder
from models.data import ShardDataset, make_loader, resolve_shard_dirs, write_shards
from models.hybrid_encoder import EncoderFeatures, HybridEncoder, create_encoder
from models.mae import MAEOutput, MaskedAutoencoder, create_mae
from models.registry import HybridSpec, get_spec, list_sizes, register_size
from models.train import PretrainConfig, PretrainResult, Trainer, pretrain
from models.validate import ReconstructionMetrics

__all__ = [
    "EncoderFeatures", "HybridEncoder", "HybridSpec", "MAEOutput", "MaskedAutoencoder", "PretrainConfig",
    "PretrainResult", "ReconstructionMetrics", "ShardDataset", "Trainer", "create_encoder", "create_mae",
    "get_spec", "list_sizes", "load_encoder", "make_loader", "pretrain", "register_size", "resolve_shard_dirs",
    "write_shards",
]
