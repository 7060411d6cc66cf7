"""`rtseg export-triton PACKAGE --repo DIR [--engine NAME.engine] [--max-batch N] ...`

Writes a Triton Inference Server model repository: DIR/NAME (onnxruntime_onnx) and, given an
engine built by `rtseg build-engine`, DIR/NAME_trt (tensorrt_plan), each with its config.pbtxt,
the model under 1/ and the package's sidecar beside it. An existing model folder is replaced
only with --force.
"""

from __future__ import annotations

import click

from rtseg.cli.path_types import PATH


@click.command("export-triton")
@click.argument("package", type=PATH)
@click.option("--repo", required=True, type=PATH, help="Model repository folder.")
@click.option("--name", help="Triton model name (default: the package's name; the plan gets NAME_trt).")
@click.option(
    "--engine",
    type=PATH,
    help="A TensorRT engine built from PACKAGE (rtseg build-engine): adds NAME_trt (tensorrt_plan).",
)
@click.option(
    "--max-batch",
    type=click.IntRange(min=1),
    help="Triton max_batch_size (default 8; for the plan, the engine's largest profile batch).",
)
@click.option(
    "--instances", type=click.IntRange(min=1), default=1, show_default=True, help="Instances per model."
)
@click.option(
    "--kind",
    type=click.Choice(["cpu", "gpu"]),
    default="cpu",
    show_default=True,
    help="Where Triton runs the ONNX model's instances (the plan always runs on the GPU).",
)
@click.option(
    "--max-queue-delay-us",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Dynamic batching: how long a request may wait for others to batch with.",
)
@click.option("--force", is_flag=True, help="Replace existing model folders of the same names.")
def export_triton(package, repo, name, engine, max_batch, instances, kind, max_queue_delay_us, force):
    """Write a Triton model repository for PACKAGE (and its TensorRT engine)."""
    from rtseg.api import export_triton as write_repository

    result = write_repository(
        package,
        repo,
        name=name,
        engine=engine,
        max_batch=max_batch,
        instances=instances,
        kind=kind,
        max_queue_delay_us=max_queue_delay_us,
        force=force,
    )
    for model, folder in result.models.items():
        config = result.configs[model]
        tensors = ", ".join(
            f"{t.name} {t.data_type[5:].lower()} {list(t.dims)}" for t in config.inputs + config.outputs
        )
        click.echo(f"wrote {folder}: {config.platform}, max_batch_size {config.max_batch_size}; {tensors}")
    plan = result.engine_meta
    if plan:
        key = plan.get("key") or {}
        click.echo(
            f"the plan runs only where Triton's TensorRT is {key.get('tensorrt', '?')} on a "
            f"{key.get('gpu', '?')} (compute capability {key.get('compute_capability', '?')})"
        )
