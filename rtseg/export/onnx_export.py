"""PyTorch -> ONNX (single file, dynamic batch) and the parity check against PyTorch."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from rtseg.core.onnx_graph import all_nodes
from rtseg.errors import ExportError, import_optional
from rtseg.models.deploy import DeployableSegmenter

torch = import_optional("torch")  # MissingDependencyError naming the extra
nn = torch.nn

OPSET = 18
INPUT_NAME = "image"


@contextlib.contextmanager
def _quiet():
    """The exporter prints progress and warnings on every call; keep the user's terminal clean."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


MAX_BATCH = 256
ANSI_CODES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # terminal colours in torch.export's messages


def export_onnx(
    model: nn.Module,
    path: str | Path,
    input_size: tuple[int, int],
    mean,
    std,
    output: str = "ids",
    opset: int = OPSET,
    use_cache: bool = True,
) -> Path:
    """Export `model` (normalised NCHW float in, logits out) wrapped as a deployable graph.

    The ONNX takes `image`: (batch, H, W, 3) uint8 RGB with a dynamic batch axis, and returns
    `class_ids`: (batch, H, W) uint8, or `logits`: (batch, C, H, W) float32. One file, no
    external data, no exporter stack traces (they hold this machine's file paths). The same
    weights exported the same way before come from the graph cache (export/graph_cache.py).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch_to_onnx(*deployable_graph(model, input_size, mean, std, output), path, opset, use_cache)
    return path


def deployable_graph(model: nn.Module, input_size: tuple[int, int], mean, std, output: str = "ids"):
    """(graph, example, input name, output name) for torch_to_onnx: `model` wrapped as the
    deployable uint8 NHWC RGB graph, and a (2, H, W, 3) uint8 example (batch 2 keeps the axis
    symbolic)."""
    graph = DeployableSegmenter(model.eval(), mean, std, output).eval()
    example = torch.zeros((2, *input_size, 3), dtype=torch.uint8)
    return graph, example, INPUT_NAME, "class_ids" if output == "ids" else "logits"


def torch_to_onnx(
    module: nn.Module,
    example,
    input_name: str,
    output_name: str,
    path: Path,
    opset: int = OPSET,
    use_cache: bool = True,
) -> str | None:
    """torch.onnx.export (dynamo) of `module` taking one tensor like `example`, whose first axis
    becomes a dynamic batch (1..MAX_BATCH), to the single file `path`, without the exporter's
    stack traces. Through the graph cache unless `use_cache` is False; returns the cache key
    when the graph came from the cache, else None. ExportError when the exporter fails."""
    from rtseg.export import graph_cache

    def export(target: Path) -> None:
        _export_graph(module, example, target, input_name, output_name, opset)

    key = use_cache and graph_cache.graph_key(
        module, example, input=input_name, output=output_name, opset=opset, max=MAX_BATCH
    )
    if not key:
        export(path)
        return None
    return key if graph_cache.cached_export(key, path, export) else None


def export_cause(exc: BaseException) -> str:
    """'Type: first line' of the innermost cause of an exporter failure, without the terminal
    colour codes torch.export puts in its messages."""
    while exc.__cause__ is not None and exc.__cause__ is not exc:
        exc = exc.__cause__
    lines = [ln.strip() for ln in ANSI_CODES.sub("", str(exc)).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def _export_graph(module: nn.Module, example, path: Path, input_name: str, output_name: str, opset: int):
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    was_training = module.training  # the caller's module is left in the mode it was in
    try:
        with _quiet(), torch.no_grad():
            torch.onnx.export(
                module.eval(),
                (example,),
                str(path),
                input_names=[input_name],
                output_names=[output_name],
                dynamic_shapes=({0: batch},),
                opset_version=opset,
                external_data=False,
                dynamo=True,
            )
    except Exception as exc:  # the exporter raises many unrelated types; report them as one
        raise ExportError(f"ONNX export failed: {export_cause(exc)}") from exc
    finally:
        module.train(was_training)
    exported = onnx.load(str(path))
    if drop_stack_traces(exported):
        onnx.save(exported, str(path))


# Per-node metadata the torch exporter writes: the Python stack of the export, with the file
# paths of the machine it ran on. Dropped, so a package does not show where it was made.
STACK_TRACE_KEY = "pkg.torch.onnx.stack_trace"


def drop_stack_traces(model) -> int:
    """Remove STACK_TRACE_KEY from every node of the onnx ModelProto `model` (its subgraphs and
    functions too), in place; returns how many were removed."""
    removed = 0
    nodes = [*all_nodes(model.graph), *(n for f in model.functions for n in f.node)]
    for node in nodes:
        keep = [p for p in node.metadata_props if p.key != STACK_TRACE_KEY]
        removed += len(node.metadata_props) - len(keep)
        del node.metadata_props[:]
        node.metadata_props.extend(keep)
    return removed


@dataclass(frozen=True)
class ParityReport:
    max_abs_logit_diff: float
    argmax_agreement: float
    frames: int

    def line(self) -> str:
        return (
            f"parity over {self.frames} frames: max |logit diff| {self.max_abs_logit_diff:.2e}, "
            f"argmax agreement {100 * self.argmax_agreement:.3f}%"
        )


def _logits_session(onnx_path: Path):
    """ONNX Runtime session on a copy of the graph that also outputs the ArgMax's input."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(onnx_path))
    argmax = [n for n in model.graph.node if n.op_type == "ArgMax"]
    if argmax:
        logits_name = argmax[-1].input[0]
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(logits_name))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


@torch.no_grad()
def check_parity(
    model: nn.Module,
    onnx_path: str | Path,
    frames: np.ndarray,
    mean,
    std,
    min_agreement: float = 0.999,
    max_diff: float | None = 1e-2,
    batch_size: int = 4,
) -> ParityReport:
    """Compare ONNX Runtime with PyTorch on `frames` `(N, H, W, 3) uint8 RGB` at the graph size.

    Raises ExportError when argmax agreement < `min_agreement` or (if given) the max absolute
    logit difference > `max_diff`.
    """
    onnx_path = Path(onnx_path)
    session = _logits_session(onnx_path)
    torch_graph = DeployableSegmenter(model.eval(), mean, std, output="logits").eval()
    worst, agree, total = 0.0, 0, 0
    for i in range(0, len(frames), batch_size):
        chunk = np.ascontiguousarray(frames[i : i + batch_size])
        ref = torch_graph(torch.from_numpy(chunk)).numpy()
        outputs = session.run(None, {INPUT_NAME: chunk})
        got = outputs[-1].astype(np.float32)
        if got.ndim == 3:  # a logits graph has no ArgMax: its single output is the logits
            raise ExportError(f"{onnx_path}: cannot find the logits to compare")
        worst = max(worst, float(np.abs(got - ref).max()))
        agree += int((got.argmax(1) == ref.argmax(1)).sum())
        total += ref.shape[0] * ref.shape[2] * ref.shape[3]
    report = ParityReport(worst, agree / max(1, total), len(frames))
    if report.argmax_agreement < min_agreement or (max_diff is not None and worst > max_diff):
        raise ExportError(
            f"{onnx_path.name}: ONNX disagrees with PyTorch ({report.line()}); "
            f"required agreement >= {100 * min_agreement:.2f}%"
            + (f" and diff <= {max_diff:g}" if max_diff is not None else "")
        )
    return report
