"""Label sets by name (camvid, cityscapes, ...) or from a file, for models brought from elsewhere.

Files:
    classes.json   ["road", "car", ...]  or  {"classes": [...], "palette": [[r, g, b], ...]}
                   or  [{"name": "road", "color": [128, 64, 128]}, ...]
    classes.txt    one class per line, in id order: "road" or "road 128 64 128" (RGB);
                   blank lines and lines starting with # are skipped
Classes without colours get distinct ones (labels.default_palette).
"""

from __future__ import annotations

import json
from pathlib import Path

from rtseg.data.labels import LABEL_SETS, LabelSet, default_palette
from rtseg.errors import InputError


def _palette(colours, where: str) -> tuple[tuple[int, int, int], ...]:
    result = []
    for colour in colours:
        if (
            not isinstance(colour, (list, tuple))
            or len(colour) != 3
            or not all(isinstance(v, int) and 0 <= v <= 255 for v in colour)
        ):
            raise InputError(f"{where}: a palette colour must be [r, g, b] in 0..255, got {colour!r}")
        result.append(tuple(colour))
    return tuple(result)


def _from_json(path: Path) -> tuple[list[str], list | None]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read the class list ({exc})") from exc
    if isinstance(data, dict):
        return data.get("classes"), data.get("palette")
    if isinstance(data, list) and data and all(isinstance(d, dict) for d in data):
        return [d.get("name") for d in data], [d.get("color") for d in data]
    return data, None


def _from_text(path: Path) -> tuple[list[str], list | None]:
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the class list ({exc})") from exc
    names, colours = [], []
    for line in (raw.strip() for raw in lines):
        if not line or line.startswith("#"):
            continue
        words = line.replace(",", " ").split()
        if len(words) >= 4 and all(w.isdigit() for w in words[-3:]):
            names.append(" ".join(words[:-3]))
            colours.append([int(w) for w in words[-3:]])
        else:
            names.append(line)
            colours.append(None)
    return names, (colours if all(c is not None for c in colours) else None)


def label_set_from_file(path: str | Path) -> LabelSet:
    """A LabelSet named after the file's stem; InputError naming the problem."""
    path = Path(path)
    names, colours = _from_json(path) if path.suffix.lower() == ".json" else _from_text(path)
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise InputError(f"{path}: expected a non-empty list of class names")
    if colours is None or any(c is None for c in colours):
        palette = default_palette(len(names))
    else:
        if len(colours) != len(names):
            raise InputError(f"{path}: {len(names)} classes but {len(colours)} palette colours")
        palette = _palette(colours, str(path))
    return LabelSet(path.stem, tuple(names), palette)


def resolve_label_set(spec: str | Path | None, num_classes: int) -> LabelSet:
    """`spec`: a known label set's name (see LABEL_SETS), a .json / .txt file, or None (generic
    names class_0 ... with distinct colours). InputError unless it has `num_classes` classes."""
    if spec is None:
        names = tuple(f"class_{i}" for i in range(num_classes))
        return LabelSet("unnamed", names, default_palette(num_classes))
    text = str(spec)
    if text.lower() in LABEL_SETS:
        labels = LABEL_SETS[text.lower()]
    elif Path(text).is_file():
        labels = label_set_from_file(text)
    else:
        known = ", ".join(LABEL_SETS)
        raise InputError(f"classes {text!r}: neither a known label set ({known}) nor a file")
    if labels.num_classes != num_classes:
        raise InputError(
            f"classes {text!r} has {labels.num_classes} classes but the model outputs {num_classes}"
        )
    return labels
