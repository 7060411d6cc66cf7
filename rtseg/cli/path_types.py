"""The click type of every path option and argument: a path, never checked by click itself.

click.Path checks readability by default (`os.access`) and answers with its usage block and
status 2; that check is also wrong for root without DAC override. rtseg checks every input and
output itself (rtseg.core.paths) and answers one line with status 1.
"""

from __future__ import annotations

from pathlib import Path

import click

PATH = click.Path(path_type=Path, readable=False)  # -> pathlib.Path
STR_PATH = click.Path(path_type=str, readable=False)  # -> str
