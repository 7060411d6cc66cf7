"""OpenVINO backend: the model package's ONNX read and compiled by OpenVINO's CPU plugin.

Two infer requests per compiled model, used in turn (rtseg.runtime.slots): `submit` starts one
with `start_async` and returns, so the caller prepares the next frame while OpenVINO's own
threads compute (`overlaps`). Every compiled model has a static batch: 1 (`rtseg run`), else the
next power of two (multi-source runs, eval, bench, batch jobs; a short batch is padded), each
compiled on first use. Not one dynamic-batch model: OpenVINO 2026.4's CPU plugin gives wrong ids
for batches above 1 on a dynamic batch axis with ONNX Runtime's Q/DQ placement (the `_int8` and
`_int8cpu` packages: 82% agreement with batch 1 on CamVid frames); static shapes agree exactly.

Precision: OpenVINO's CPU plugin computes in bf16 where the CPU has bf16 instructions (AVX512_BF16,
AMX) and in f32 elsewhere; `precision` forces one. Compiled
models are kept in `cache_dir` (OpenVINO's CACHE_DIR: the next start imports instead of compiling).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtseg.core.package import ModelPackage
from rtseg.core.paths import require_file
from rtseg.errors import BackendError, InputError, MissingDependencyError, ModelError
from rtseg.runtime.base import Backend
from rtseg.runtime.slots import Pending, SlotRing, infer_through_slots

# Words for the compute precision: "auto" lets the CPU plugin choose (bf16 where the CPU has it).
OPENVINO_PRECISIONS = ("auto", "bf16", "f16", "f32")
PRECISION_ENV = "RTSEG_OPENVINO_PRECISION"
CAPABILITY_OF = {"bf16": "BF16", "f16": "FP16"}  # the plugin's OPTIMIZATION_CAPABILITIES words
REQUESTS_PER_MODEL = 2  # one computing, one being filled / collected
LARGEST_BATCH = 64


def import_openvino():
    """The `openvino` module; MissingDependencyError (one line) when it is absent or broken."""
    try:
        import openvino
    except ImportError as exc:
        raise MissingDependencyError("openvino", "openvino", "the OpenVINO backend") from exc
    except Exception as exc:  # a broken install raises whatever its native loader raises
        raise BackendError(f"openvino cannot be imported: {str(exc).splitlines()[0]}") from exc
    return openvino


def cpu_capabilities(core) -> tuple[str, ...]:
    """The CPU plugin's OPTIMIZATION_CAPABILITIES ("BF16", "FP16", "INT8", ...)."""
    try:
        return tuple(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    except Exception:  # an old plugin without the property: assume f32 only
        return ("FP32",)


def resolve_precision(requested: str | None, capabilities: tuple[str, ...]) -> str | None:
    """The INFERENCE_PRECISION_HINT to set, or None to keep the plugin's default ("auto").

    `requested`: one of OPENVINO_PRECISIONS, None for "auto" (`$RTSEG_OPENVINO_PRECISION` is
    read by the run's configuration, rtseg.assembly.config, and passed down from there).
    InputError for an unknown word; BackendError when this CPU cannot compute in it."""
    word = (requested or "auto").lower()
    if word not in OPENVINO_PRECISIONS:
        raise InputError(f"unknown OpenVINO precision {word!r} (use {', '.join(OPENVINO_PRECISIONS)})")
    if word == "auto":
        return None
    if word != "f32" and CAPABILITY_OF[word] not in capabilities:
        raise BackendError(
            f"OpenVINO precision {word}: this CPU cannot compute in it (it has {', '.join(capabilities)}); "
            "use auto or f32"
        )
    return word


def precision_word(element_type) -> str:
    """OpenVINO's element type ("bf16", "f32", "f16") as rtseg says it."""
    return str(getattr(element_type, "get_type_name", lambda: element_type)()).lower()


@dataclass
class _Request:
    """One infer request and the batch it computes (`pending`: the SlotRing's slot)."""

    request: object
    pending: Pending | None = None


class _Compiled:
    """A compiled model and its infer requests."""

    def __init__(self, compiled):
        self.compiled = compiled
        self.ring = SlotRing()
        self.ring.slots = [_Request(compiled.create_infer_request()) for _ in range(REQUESTS_PER_MODEL)]


class OpenVinoBackend(Backend):
    """`package` on OpenVINO's CPU plugin. `threads`: INFERENCE_NUM_THREADS (default: up to 4,
    one per core); `precision`: one of OPENVINO_PRECISIONS (see resolve_precision);
    `cache_dir`: where OpenVINO keeps compiled models (None: no cache); `throughput`: split the
    threads into REQUESTS_PER_MODEL streams (OpenVINO's THROUGHPUT hint), so the requests the
    pipeline keeps in flight compute at once, each on its share of the cores: more frames a
    second on a recorded file, each frame a little later. False (the LATENCY hint, one stream
    on every thread): a frame is done soonest, for live sources and one call at a time.

    `precision` (attribute) says what computes: the package's "int8" for a quantized package,
    else the compute precision the plugin took ("bf16", "f32", "f16")."""

    name = "openvino"
    overlaps = True
    runs_on = "cpu"

    def __init__(
        self,
        package: ModelPackage,
        threads: int | None = None,
        precision: str | None = None,
        cache_dir: Path | None = None,
        throughput: bool = False,
    ):
        ov = import_openvino()
        self.core = ov.Core()
        hint = resolve_precision(precision, cpu_capabilities(self.core))
        self.threads = threads or min(4, os.cpu_count() or 1)
        self.streams = min(REQUESTS_PER_MODEL, self.threads) if throughput else 1
        self.config = {"INFERENCE_NUM_THREADS": self.threads, "PERFORMANCE_HINT": "LATENCY"}
        if self.streams > 1:
            self.config.update(PERFORMANCE_HINT="THROUGHPUT", NUM_STREAMS=self.streams)
        if hint is not None:
            self.config["INFERENCE_PRECISION_HINT"] = hint
        if cache_dir is not None:
            self.config["CACHE_DIR"] = str(cache_dir)
        self.package = package
        self.model = self._read(package.onnx_path)
        self.input_size = package.input_size
        self.num_classes = package.num_classes
        self.supports_logits = package.output_kind == "logits"
        batch = self.model.inputs[0].get_partial_shape()[0]
        self.max_batch = batch.get_length() if batch.is_static else LARGEST_BATCH
        self._compiled: dict[int, _Compiled] = {}
        single = self._compiled_for(1)
        compute = precision_word(single.compiled.get_property("INFERENCE_PRECISION_HINT"))
        self.compute_precision = compute
        self.precision = "int8" if package.precision.startswith("int8") else compute

    def _read(self, onnx_path: Path):
        require_file(onnx_path, "model", ModelError)
        try:
            model = self.core.read_model(str(onnx_path))
        except Exception as exc:  # OpenVINO raises RuntimeError for graphs it cannot read
            raise ModelError(f"{onnx_path}: OpenVINO cannot read it: {str(exc).splitlines()[0]}") from exc
        if len(model.inputs) != 1 or len(model.outputs) < 1:
            raise ModelError(f"{onnx_path}: expected one input and one output")
        return model

    def _bucket(self, count: int) -> int:
        """The static batch that runs `count` frames: the next power of two (at most max_batch)."""
        return min(self.max_batch, 1 << (count - 1).bit_length())

    def _compiled_for(self, count: int) -> _Compiled:
        """The compiled model for a batch of `count` frames (static batch `_bucket(count)`)."""
        key = self._bucket(count)
        if key not in self._compiled:
            model = self.model.clone()
            shape = model.inputs[0].get_partial_shape()
            shape[0] = key
            model.reshape({model.inputs[0]: shape})
            try:
                compiled = self.core.compile_model(model, "CPU", self.config)
            except Exception as exc:
                raise BackendError(
                    f"{self.package.onnx_path.name}: OpenVINO cannot compile it: {str(exc).splitlines()[0]}"
                ) from exc
            self._compiled[key] = _Compiled(compiled)
        return self._compiled[key]

    def _padded(self, images: np.ndarray) -> np.ndarray:
        """`images` filled up with black frames to their bucket's static batch."""
        bucket = self._bucket(len(images))
        if bucket == len(images):
            return images
        padded = np.zeros((bucket, *images.shape[1:]), images.dtype)
        padded[: len(images)] = images
        return padded

    def _submit_impl(self, images: np.ndarray) -> Pending:
        slot = self._compiled_for(len(images)).ring.take()
        slot.request.start_async({0: self._padded(images)}, share_inputs=False)  # copied: callers reuse
        slot.pending = Pending(slot, len(images), self._finish)
        return slot.pending

    def _finish(self, slot: _Request, count: int) -> np.ndarray:
        slot.request.wait()
        out = slot.request.get_output_tensor(0).data[:count]
        if self.supports_logits:
            return out.argmax(1).astype(np.uint8)
        return np.array(out, dtype=np.uint8)  # a copy: the request's memory is reused

    def _infer_impl(self, images: np.ndarray) -> np.ndarray:
        if len(images) == 1:
            return self._submit_impl(images).wait()
        return infer_through_slots(
            self._submit_impl, images, self.max_batch, REQUESTS_PER_MODEL, self.input_size
        )

    def _logits_impl(self, images: np.ndarray) -> np.ndarray:
        request = self._compiled_for(len(images)).ring.take().request
        request.infer({0: self._padded(images)})
        return np.array(request.get_output_tensor(0).data[: len(images)], dtype=np.float32)

    def describe(self) -> str:
        streams = f", {self.streams} streams" if self.streams > 1 else ""
        return f"openvino[CPU, {self.precision}, {self.threads} threads{streams}]"

    def _close_impl(self) -> None:
        for compiled in self._compiled.values():
            for slot in compiled.ring.slots:
                if slot.pending is not None:
                    slot.pending.wait()
        self._compiled.clear()
        self.model = None
