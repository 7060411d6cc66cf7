"""The deployable graph: uint8 NHWC RGB in, class ids (or logits) out, pre-processing inside.

Putting the cast, scaling and mean/std in the graph keeps the host free of float math and
makes it copy 3 bytes a pixel to the device instead of 12; an ArgMax at the end makes the
copy back one byte a pixel instead of C x 4.
"""

from __future__ import annotations

from rtseg.errors import import_optional

torch = import_optional("torch")  # MissingDependencyError naming the extra
nn = torch.nn


class DeployableSegmenter(nn.Module):
    """Input `(N, H, W, 3) uint8 RGB`. Output `(N, H, W) uint8` class ids (`output="ids"`)
    or `(N, C, H, W) float32` logits (`output="logits"`)."""

    def __init__(self, model: nn.Module, mean, std, output: str = "ids"):
        super().__init__()
        if output not in ("ids", "logits"):
            raise ValueError(f"output must be 'ids' or 'logits', got {output!r}")
        self.model = model
        mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        # (x / 255 - mean) / std == x * scale + shift: one Mul and one Add in the graph.
        self.register_buffer("scale", 1.0 / (255.0 * std_t))
        self.register_buffer("shift", -mean_t / std_t)
        self.output = output

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.permute(0, 3, 1, 2).to(torch.float32) * self.scale + self.shift
        logits = self.model(x)
        if self.output == "logits":
            return logits
        return logits.argmax(dim=1).to(torch.uint8)
