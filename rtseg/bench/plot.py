"""The bench plot: inference fps against accuracy per batch-1 combination (matplotlib, `plot`
extra). The accuracy axis spans at least MIN_SPAN, so equal accuracies look equal; labels are
stacked so that none overlaps another."""

from __future__ import annotations

from pathlib import Path

from rtseg.bench.report import backend_label, prepare_output
from rtseg.core.paths import atomic_output, describe_os_error
from rtseg.errors import MissingDependencyError, OutputError

COLOURS = {"onnxruntime": "tab:blue", "torch": "tab:orange", "tensorrt": "tab:green"}
MARKERS = {"fp32": "o", "fp16": "s", "int8": "^", "int8cpu": "v"}
MIN_SPAN = 0.05  # the accuracy axis spans at least 5 points of mIoU / agreement
LABEL_PT = 8  # label font size (points)


def accuracy_limits(values: list[float], min_span: float = MIN_SPAN) -> tuple[float, float]:
    """(low, high) of the accuracy axis: the values with 15% margins, widened around their
    middle to at least `min_span`, kept within 0..1."""
    low, high = min(values), max(values)
    pad = max((high - low) * 0.15, (min_span - (high - low)) / 2, 0.0)
    low, high = low - pad, high + pad
    if low < 0.0:
        low, high = 0.0, min(1.0, high - low)
    if high > 1.0:
        low, high = max(0.0, low - (high - 1.0)), 1.0
    return low, high


def label_offsets(
    anchors: list[tuple[float, float]], sizes: list[tuple[float, float]], obstacles=()
) -> list[float]:
    """Vertical offsets (pixels, up) that keep text boxes apart: each box of `sizes` (width,
    height) starts right of its anchor (x, y pixels, the box's vertical middle) and moves up or
    down, nearest first, until it overlaps no box placed before it and no `obstacles` box
    (x0, y0, x1, y1 pixels: the markers)."""
    placed: list[tuple[float, float, float, float]] = list(obstacles)
    offsets = []
    for (x, y), (w, h) in zip(anchors, sizes):
        for step in range(64):
            dy = (step + 1) // 2 * h * (1 if step % 2 else -1)
            box = (x, y + dy - h / 2, x + w, y + dy + h / 2)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                break
        placed.append(box)
        offsets.append(dy)
    return offsets


def _label(row: dict, sizes: set[str]) -> str:
    return f"{backend_label(row)} {row['precision']}" + (f" {row['size']}" if len(sizes) > 1 else "")


def _draw_points(ax, points: list[dict], metric: str) -> None:
    for row in points:
        colour, marker, y = (
            COLOURS.get(row["backend"], "tab:gray"),
            MARKERS.get(row["precision"], "o"),
            row[metric],
        )
        ax.scatter(row["infer_fps"], y, color=colour, marker=marker, s=60, zorder=3)
        if row.get("e2e_fps"):
            ax.plot([row["e2e_fps"], row["infer_fps"]], [y, y], ":", color=colour, zorder=2)
            ax.scatter(row["e2e_fps"], y, facecolors="none", edgecolors=colour, marker=marker, s=60, zorder=3)


def _draw_labels(ax, fig, points: list[dict], metric: str) -> None:
    fig.canvas.draw()  # final limits, so data map to pixels
    texts = [_label(row, {r["size"] for r in points}) for row in points]
    anchors = [tuple(ax.transData.transform((r["infer_fps"], r[metric]))) for r in points]
    px = fig.dpi / 72.0
    sizes = [(len(t) * LABEL_PT * 0.6 * px, LABEL_PT * 1.5 * px) for t in texts]
    centres = anchors + [
        tuple(ax.transData.transform((r["e2e_fps"], r[metric]))) for r in points if r.get("e2e_fps")
    ]
    marker = 5 * px  # half a marker (s=60 is about 8 points across)
    obstacles = [(x - marker, y - marker, x + marker, y + marker) for x, y in centres]
    offsets = label_offsets([(x + 7 * px, y) for x, y in anchors], sizes, obstacles)
    for row, text, dy in zip(points, texts, offsets):
        ax.annotate(
            text,
            (row["infer_fps"], row[metric]),
            textcoords="offset pixels",
            xytext=(7 * px, dy - LABEL_PT * 0.4 * px),
            fontsize=LABEL_PT,
            arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.6} if dy else None,
        )


def write_plot(rows: list[dict], path: str | Path, title: str = "") -> Path:
    """PNG: inference fps (x) against mIoU (y; argmax agreement with fp32 when no mIoU) per
    batch-1 combination; end-to-end fps as a hollow marker joined to its inference point."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FormatStrFormatter
    except ImportError as exc:
        raise MissingDependencyError("matplotlib", "plot", "--plot") from exc
    path = prepare_output(path)
    candidates = [r for r in rows if r["status"] == "ok" and r["batch"] == 1]
    metric = "miou" if any(r.get("miou") is not None for r in candidates) else "agreement"
    points = sorted((r for r in candidates if r.get(metric) is not None), key=lambda r: -r[metric])
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=120)
    _draw_points(ax, points, metric)
    fastest = max([r["infer_fps"] for r in points] or [1.0])
    ax.set_xlim(0, fastest * 1.45)  # room for the labels on the right
    if points:
        ax.set_ylim(*accuracy_limits([r[metric] for r in points]))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%.3f"))
    ax.set_xlabel("frames per second (filled: inference only, hollow: end to end)")
    ax.set_ylabel("mIoU" if metric == "miou" else "argmax agreement with fp32")
    ax.set_title(title or "speed against accuracy (batch 1)", fontsize=10)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    _draw_labels(ax, fig, points, metric)
    try:
        with atomic_output(path, keep_suffix=True) as temp:  # replaced only by a whole PNG
            fig.savefig(temp)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({describe_os_error(exc)})") from None
    finally:
        plt.close(fig)
    return path
