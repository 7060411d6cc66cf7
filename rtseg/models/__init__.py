"""Segmentation models in plain torch: encoders, decoders and the `create_model` registry."""

from rtseg.models.registry import ARCHITECTURES, ENCODERS, build_encoder, create_model, model_from_checkpoint

__all__ = ["ARCHITECTURES", "ENCODERS", "build_encoder", "create_model", "model_from_checkpoint"]
