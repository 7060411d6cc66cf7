"""`rtseg batch`: an archive of videos segmented on a Ray cluster (local by default).

from rtseg.batch import BatchConfig, VideoOptions, run_batch
report = run_batch(BatchConfig(inputs=("clips/",), out_dir=Path("out"),
                               video=VideoOptions.of(model=Path("m.onnx").resolve())))
print(report.summary())

Ray is imported only when a run starts (`pip install 'rtseg[ray]'`).
"""

from rtseg.batch.config import BatchConfig, VideoOptions
from rtseg.batch.inputs import BatchInput, expand_inputs
from rtseg.batch.manifest import MANIFEST_NAME, Manifest
from rtseg.batch.outputs import OUTPUT_KINDS, OutputPlan, parse_output_kinds
from rtseg.batch.report import BatchReport
from rtseg.batch.runner import archive_options, model_identity, run_batch

__all__ = [
    "MANIFEST_NAME",
    "OUTPUT_KINDS",
    "BatchConfig",
    "BatchInput",
    "BatchReport",
    "Manifest",
    "OutputPlan",
    "VideoOptions",
    "archive_options",
    "expand_inputs",
    "model_identity",
    "parse_output_kinds",
    "run_batch",
]
