"""What `run_bench` writes, checked before it measures anything and written once it is done:
the rows as JSON, CSV and a PNG plot (BenchConfig.json_path / csv_path / plot_path)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from rtseg.bench.config import BenchConfig
from rtseg.core.package import package_files
from rtseg.core.paths import check_paths
from rtseg.errors import MissingDependencyError


def check_bench_paths(cfg: BenchConfig) -> None:
    """Every input (the model's files, the video, the data folder) against every output (JSON,
    CSV, plot): no output may destroy an input (rtseg.core.paths.check_paths); matplotlib
    present when a plot is asked for."""
    check_paths(
        inputs=[
            *(("--model", p) for p in package_files(cfg.model)),
            ("--video", cfg.video),
            ("--data", cfg.data.root if cfg.data is not None else None),
        ],
        outputs=[("--json", cfg.json_path), ("--csv", cfg.csv_path), ("--plot", cfg.plot_path)],
    )
    if cfg.plot_path is not None and importlib.util.find_spec("matplotlib") is None:
        raise MissingDependencyError("matplotlib", "plot", "--plot")


def write_outputs(cfg: BenchConfig, rows: list[dict], log: Callable[[str], None]) -> None:
    """The rows to each output `cfg` names, each replaced only when whole; "wrote PATH" to `log`."""
    from rtseg.bench.plot import write_plot
    from rtseg.bench.report import write_csv, write_json

    for path, write in ((cfg.json_path, write_json), (cfg.csv_path, write_csv), (cfg.plot_path, write_plot)):
        if path is not None:
            write(rows, path)
            log(f"wrote {path}")
