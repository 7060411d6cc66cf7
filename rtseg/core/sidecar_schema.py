"""The schema of a model package's sidecar (`name.json`), checked whole, field by field.

A small declarative validator (a few spec classes and one table) rather than jsonschema: the
inference install stays lean (jsonschema pulls attrs, referencing and the compiled rpds-py), and
each error is one line naming the field, its path and the value found:
`palette[3][1] must be an integer in 0..255, got 300`.

Fields not in the table are allowed (tools may add their own); fields in it are checked
wherever they appear, required or not.
"""

from __future__ import annotations

FORMAT = "rtseg-model"
FORMAT_VERSION = 1
PRECISIONS = ("fp32", "fp16", "int8")
OUTPUT_KINDS = ("class_ids", "logits")
MAX_CLASSES = 256  # class ids are uint8


class SchemaError(ValueError):
    """One field does not fit the schema. `str()` is one line: `<path> <problem>, got <value>`."""


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Spec:
    what = "a value"

    def check(self, value, path: str) -> None:
        if not self.accepts(value):
            raise SchemaError(f"{path} must be {self.what}, got {_shown(value)}")

    def accepts(self, value) -> bool:
        return True


class Int(Spec):
    def __init__(self, low: int | None = None, high: int | None = None):
        self.low, self.high = low, high
        bounds = f" in {low}..{high}" if low is not None and high is not None else ""
        bounds = bounds or (f" >= {low}" if low is not None else "")
        self.what = f"the integer {low}" if low is not None and low == high else f"an integer{bounds}"

    def accepts(self, value) -> bool:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and (self.low is None or value >= self.low)
            and (self.high is None or value <= self.high)
        )


class Num(Spec):
    def __init__(self, low: float | None = None, high: float | None = None, positive: bool = False):
        self.low, self.high, self.positive = low, high, positive
        self.what = "a positive number" if positive else "a number"
        if low is not None and high is not None:
            self.what = f"a number in {low}..{high}"

    def accepts(self, value) -> bool:
        return (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and value == value  # not NaN
            and (self.low is None or value >= self.low)
            and (self.high is None or value <= self.high)
            and (not self.positive or value > 0)
        )


class Str(Spec):
    def __init__(self, choices: tuple[str, ...] = ()):
        self.choices = choices
        self.what = "one of " + ", ".join(map(repr, choices)) if choices else "a non-empty string"

    def accepts(self, value) -> bool:
        return isinstance(value, str) and bool(value) and (not self.choices or value in self.choices)


class Nullable(Spec):
    def __init__(self, spec: Spec):
        self.spec = spec

    def check(self, value, path: str) -> None:
        if value is not None:
            self.spec.check(value, path)


class ListOf(Spec):
    def __init__(self, item: Spec, min_len: int = 0, max_len: int | None = None):
        self.item, self.min_len, self.max_len = item, min_len, max_len
        if min_len == max_len:
            self.what = f"a list of {min_len}"
        else:
            self.what = f"a list of {min_len}..{max_len}" if max_len else f"a list of at least {min_len}"

    def check(self, value, path: str) -> None:
        if not isinstance(value, list):
            raise SchemaError(f"{path} must be a list, got {_shown(value)}")
        if len(value) < self.min_len or (self.max_len is not None and len(value) > self.max_len):
            raise SchemaError(f"{path} must be {self.what}, got {len(value)} entries")
        for i, item in enumerate(value):
            self.item.check(item, f"{path}[{i}]")


class Obj(Spec):
    """A JSON object: `fields` maps a name to (spec, required); other names are allowed."""

    def __init__(self, fields: dict[str, tuple[Spec, bool]] | None = None):
        self.fields = fields or {}

    def check(self, value, path: str) -> None:
        if not isinstance(value, dict):
            raise SchemaError(f"{path or 'the sidecar'} must be a JSON object, got {_shown(value)}")
        for name, (spec, required) in self.fields.items():
            where = f"{path}.{name}" if path else name
            if name not in value:
                if required:
                    raise SchemaError(f"{where} is missing")
                continue
            spec.check(value[name], where)


def _req(spec: Spec) -> tuple[Spec, bool]:
    return spec, True


def _opt(spec: Spec) -> tuple[Spec, bool]:
    return spec, False


SHA256 = Str()  # hex digests; compared with the file, so any string is checked later
SIDECAR_SCHEMA = Obj(
    {
        "format": _req(Str((FORMAT,))),
        "format_version": _req(Int(1, FORMAT_VERSION)),
        "name": _req(Str()),
        "onnx": _req(Str()),
        "onnx_sha256": _opt(Nullable(SHA256)),
        "dataset": _opt(Str()),
        "classes": _req(ListOf(Str(), 1, MAX_CLASSES)),
        "palette": _req(ListOf(ListOf(Int(0, 255), 3, 3), 1, MAX_CLASSES)),
        "input": _req(
            Obj(
                {
                    "name": _opt(Str()),
                    "layout": _req(Str(("NHWC",))),
                    "dtype": _req(Str(("uint8",))),
                    "color": _opt(Str(("RGB",))),
                    "height": _req(Int(1, 32768)),
                    "width": _req(Int(1, 32768)),
                }
            )
        ),
        "normalization": _opt(
            Obj({"mean": _req(ListOf(Num(), 3, 3)), "std": _req(ListOf(Num(positive=True), 3, 3))})
        ),
        "output": _req(Obj({"name": _opt(Str()), "kind": _req(Str(OUTPUT_KINDS)), "dtype": _opt(Str())})),
        "precision": _req(Str(PRECISIONS)),
        "model": _opt(Obj({"arch": _opt(Str()), "encoder": _opt(Str())})),
        "source": _opt(Nullable(Obj({"checkpoint": _opt(Str()), "sha256": _opt(SHA256)}))),
        "derived_from": _opt(Obj({"onnx": _opt(Str()), "sha256": _opt(SHA256), "precision": _opt(Str())})),
        "rtseg_version": _opt(Str()),
        "metrics": _opt(
            Obj(
                {
                    "val_miou": _opt(Num(0, 100)),
                    "cpu_ms_per_frame": _opt(Num(positive=True)),
                    "threads": _opt(Int(1)),
                }
            )
        ),
        "parity": _opt(Obj()),
        "calibration": _opt(Obj()),
    }
)


def check_sidecar(meta) -> None:
    """SchemaError (one line) naming the first field of `meta` that does not fit, including the
    cross-field rule: one palette colour per class."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise SchemaError(f"not an rtseg model sidecar (format != {FORMAT!r})")
    version = meta.get("format_version")
    if Int(1).accepts(version) and version > FORMAT_VERSION:
        raise SchemaError(
            f"sidecar format {version} is newer than this rtseg understands ({FORMAT_VERSION}); upgrade rtseg"
        )
    SIDECAR_SCHEMA.check(meta, "")
    if len(meta["palette"]) != len(meta["classes"]):
        raise SchemaError(f"{len(meta['classes'])} classes but {len(meta['palette'])} palette colours")
