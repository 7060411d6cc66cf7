"""Segmentation models in plain torch: encoders, decoders and the `create_model` registry.

Needs torch (the `train` extra): importing any of rtseg.models without it raises
MissingDependencyError naming the extra."""

from rtseg.errors import import_optional

import_optional("torch")

from rtseg.models.registry import ARCHITECTURES, ENCODERS, build_encoder, create_model, model_from_checkpoint  # noqa: E402

__all__ = ["ARCHITECTURES", "ENCODERS", "build_encoder", "create_model", "model_from_checkpoint"]
