"""PyTorch backend over an rtseg checkpoint: the same uint8-in, ids-out graph as the ONNX export
(rtseg.models.deploy), on the CPU or on a CUDA GPU without TensorRT.

On CUDA (`device="cuda"`), by default fp16 autocast and channels_last, and the TensorRT
backend's double buffering: two slots, each with page-locked host in/out buffers, device
buffers, its own CUDA stream and an event. `submit` copies `(n, H, W, 3) uint8 RGB` frames into
the slot's pinned buffer, starts the upload (non_blocking), the forward pass and the download of
the `(n, H, W) uint8` ids on the slot's stream and returns; `wait` syncs on the slot's event
only, so the upload and compute of frame n+1 overlap frame n's. With `cuda_graphs=True` a full
batch replays a torch.cuda.CUDAGraph captured on the slot's static device buffer. On the CPU
the same slots run the work inside `submit` (`overlaps` is False).
"""

from __future__ import annotations

import contextlib
import copy
import sys

import numpy as np

from rtseg.core.checkpoint import load_checkpoint
from rtseg.errors import DeviceError, InputError, import_optional
from rtseg.models import model_from_checkpoint
from rtseg.models.deploy import DeployableSegmenter
from rtseg.runtime.base import Backend
from rtseg.runtime.slots import Pending, SlotRing, infer_through_slots

torch = import_optional("torch")  # MissingDependencyError naming the extra

SLOTS = 2
TORCH_DEVICES = ("cpu", "cuda", "auto")  # and "cuda:N"


def resolve_device(name: str | None) -> torch.device:
    """ "cpu", "cuda", "cuda:N" or "auto" (CUDA when torch sees a GPU) -> a torch.device;
    DeviceError when CUDA is asked for and torch has none, InputError for another name."""
    name = name or "cpu"
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise InputError(f"the torch backend runs on {', '.join(TORCH_DEVICES)} or cuda:N, not {name!r}")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise InputError(f"unknown torch device {name!r} ({exc})") from exc
    if device.type == "cuda":
        if torch.version.cuda is None:
            raise DeviceError(
                f"no CUDA GPU for the torch backend: torch {torch.__version__} is a CPU-only build; "
                "install a CUDA build of torch or use --device cpu"
            )
        if not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count():
            raise DeviceError(f"no CUDA GPU {device.index or 0} for the torch backend (use --device cpu)")
    return device


class _Slot:
    """One batch in flight: pinned host buffers, the device input, the stream, the event, the graph."""

    def __init__(self, backend: TorchBackend):
        device, n, (h, w) = backend.device, backend.max_batch, backend.input_size
        cuda = device.type == "cuda"
        self.host_in = torch.empty((n, h, w, 3), dtype=torch.uint8, pin_memory=cuda)
        self.host_out = torch.empty((n, h, w), dtype=torch.uint8, pin_memory=cuda)
        self.host_in_np, self.host_out_np = self.host_in.numpy(), self.host_out.numpy()
        self.dev_in = torch.empty((n, h, w, 3), dtype=torch.uint8, device=device) if cuda else self.host_in
        self.stream = torch.cuda.Stream(device) if cuda else None
        self.event = torch.cuda.Event() if cuda else None
        self.graph = None  # torch.cuda.CUDAGraph of a full batch, and its output tensor
        self.graph_out = None
        self.pending: Pending | None = None

    def on_stream(self):
        return torch.cuda.stream(self.stream) if self.stream is not None else contextlib.nullcontext()


class TorchBackend(Backend):
    """`checkpoint_path`: an rtseg checkpoint (.pth). `device`: "cpu", "cuda", "cuda:N" or
    "auto". `fp16` / `channels_last`: autocast to float16 and channels-last weights (None: on
    for CUDA, off for the CPU; fp16 needs CUDA). `batch`: most frames per `submit` (the slots'
    buffer size). `cuda_graphs`: replay full batches as CUDA graphs (CUDA only)."""

    name = "torch"
    supports_logits = True

    def __init__(
        self,
        checkpoint_path,
        device: str = "cpu",
        threads: int | None = None,
        input_size: tuple[int, int] | None = None,
        fp16: bool | None = None,
        channels_last: bool | None = None,
        cuda_graphs: bool = False,
        batch: int = 1,
    ):
        self.device = resolve_device(device)
        self.runs_on = self.device.type
        cuda = self.device.type == "cuda"
        if fp16 and not cuda:
            raise InputError("fp16 autocast in the torch backend needs a CUDA device")
        if batch < 1:
            raise InputError(f"batch must be >= 1, got {batch}")
        payload = load_checkpoint(checkpoint_path)
        norm = payload["normalization"]
        self.fp16 = cuda if fp16 is None else fp16
        self.channels_last = cuda if channels_last is None else channels_last
        self.cuda_graphs = cuda_graphs and cuda
        graph = DeployableSegmenter(model_from_checkpoint(payload), norm["mean"], norm["std"]).eval()
        if self.channels_last:
            graph = graph.to(memory_format=torch.channels_last)
        self.graph = graph.to(self.device)
        self._logits_graph = copy.copy(self.graph)  # shares the weights; only the output kind differs
        self._logits_graph.output = "logits"
        self.input_size = tuple(input_size or payload["input_size"])
        self.num_classes = payload["model"]["num_classes"]
        self.max_batch = batch
        self.overlaps = cuda  # on the CPU submit does the work
        self.threads = threads
        self.classes = payload["labels"]["classes"]
        self.palette = np.asarray(payload["labels"]["palette"], np.uint8)
        if threads:
            torch.set_num_threads(threads)
        if cuda:
            torch.backends.cudnn.benchmark = True  # fixed input size: pick the fastest kernels once
            torch.cuda.synchronize(self.device)  # the weights are on the GPU before any slot stream runs
        self.ring = SlotRing()
        self.ring.slots.extend(_Slot(self) for _ in range(SLOTS))

    def _forward(self, x: torch.Tensor, graph=None) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.fp16, cache_enabled=False):
            return (graph or self.graph)(x)

    @torch.inference_mode()
    def _submit_impl(self, images: np.ndarray) -> Pending:
        """Start `(n, H, W, 3) uint8 RGB` frames (n <= max_batch) on the next slot; on CUDA it
        returns as soon as the work is queued."""
        count = len(images)
        slot = self.ring.take()
        np.copyto(slot.host_in_np[:count], images)
        with slot.on_stream():
            if slot.stream is not None:
                slot.dev_in[:count].copy_(slot.host_in[:count], non_blocking=True)
            if slot.graph is not None and count == self.max_batch:
                slot.graph.replay()
                out = slot.graph_out
            else:
                out = self._forward(slot.dev_in[:count])
            slot.host_out[:count].copy_(out, non_blocking=slot.stream is not None)
            if self.cuda_graphs and slot.graph is None and count == self.max_batch:
                self._capture(slot)
            if slot.event is not None:
                slot.event.record(slot.stream)
        slot.pending = Pending(slot, count, self._collect)
        return slot.pending

    def _capture(self, slot: _Slot) -> None:
        """Capture the forward pass of a full batch on the slot's static input (after warm-up
        runs on its stream); a failure turns CUDA graphs off with a warning."""
        try:
            for _ in range(2):
                self._forward(slot.dev_in)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=slot.stream):
                slot.graph_out = self._forward(slot.dev_in)
            slot.graph = graph
        except RuntimeError as exc:
            print(f"rtseg: warning: CUDA graph capture failed, running without ({exc})", file=sys.stderr)
            self.cuda_graphs, slot.graph, slot.graph_out = False, None, None

    @staticmethod
    def _collect(slot: _Slot, count: int) -> np.ndarray:
        if slot.event is not None:
            slot.event.synchronize()
        return slot.host_out_np[:count].copy()

    def _infer_impl(self, images: np.ndarray) -> np.ndarray:
        """`(N, H, W, 3) uint8 RGB` -> `(N, H, W) uint8` ids; chunks alternate between the slots."""
        return infer_through_slots(self._submit_impl, images, self.max_batch, len(self.ring), self.input_size)

    @torch.inference_mode()
    def _logits_impl(self, images: np.ndarray) -> np.ndarray:
        """`(N, C, H, W) float32` logits, computed at once (no slots)."""
        x = torch.from_numpy(images).to(self.device)
        return self._forward(x, self._logits_graph).float().cpu().numpy()

    def describe(self) -> str:
        if self.device.type == "cpu":
            return f"torch[cpu, {torch.get_num_threads()} threads]"
        extras = [name for name, on in (("fp16", self.fp16), ("channels_last", self.channels_last)) if on]
        if self.cuda_graphs:
            extras.append("cuda graphs")
        gpu = torch.cuda.get_device_name(self.device)
        return f"torch[{self.device}, {gpu}, {', '.join(extras) or 'fp32'}, batch {self.max_batch}]"

    def _close_impl(self) -> None:
        slots = list(self.ring.slots)
        self.ring.slots.clear()
        for slot in slots:
            if slot.stream is not None:
                slot.stream.synchronize()
            slot.graph = slot.graph_out = slot.pending = None
