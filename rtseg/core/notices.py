"""One-line warnings on stderr, each said once per process (an engine or decoder fallback)."""

from __future__ import annotations

import sys

_said: set[str] = set()


def warn_once(line: str) -> None:
    """`rtseg: warning: LINE` on stderr, the first time this line is warned only."""
    if line not in _said:
        _said.add(line)
        print(f"rtseg: warning: {line}", file=sys.stderr)
