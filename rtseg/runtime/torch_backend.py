"""PyTorch eager backend over an rtseg checkpoint (CPU, or CUDA when available)."""

from __future__ import annotations

import copy

import numpy as np

from rtseg.core.checkpoint import load_checkpoint
from rtseg.errors import import_optional
from rtseg.models import model_from_checkpoint
from rtseg.models.deploy import DeployableSegmenter
from rtseg.runtime.base import Backend

torch = import_optional("torch")  # MissingDependencyError naming the extra


class TorchBackend(Backend):
    """Runs the same uint8-in, ids-out graph as the ONNX export, in eager PyTorch."""

    name = "torch"

    def __init__(
        self,
        checkpoint_path,
        device: str = "cpu",
        threads: int | None = None,
        input_size: tuple[int, int] | None = None,
    ):
        payload = load_checkpoint(checkpoint_path)
        model = model_from_checkpoint(payload)
        norm = payload["normalization"]
        self.device = torch.device(device)
        self.runs_on = self.device.type
        self.graph = DeployableSegmenter(model, norm["mean"], norm["std"]).eval().to(self.device)
        self._logits_graph = copy.copy(self.graph)  # shares the weights; only the output kind differs
        self._logits_graph.output = "logits"
        self.input_size = tuple(input_size or payload["input_size"])
        self.num_classes = payload["model"]["num_classes"]
        self.max_batch = 64
        self.threads = threads
        self.classes = payload["labels"]["classes"]
        self.palette = np.asarray(payload["labels"]["palette"], np.uint8)
        if threads:
            torch.set_num_threads(threads)

    supports_logits = True

    @torch.inference_mode()
    def _infer_impl(self, images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(images).to(self.device)
        return self.graph(x).cpu().numpy()

    @torch.inference_mode()
    def _logits_impl(self, images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(images).to(self.device)
        return self._logits_graph(x).float().cpu().numpy()

    def describe(self) -> str:
        return f"torch[{self.device.type}, {torch.get_num_threads()} threads]"
