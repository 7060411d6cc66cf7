"""`rtseg` command line: a click group whose commands live in rtseg/cli/<name>.py.

Commands are imported only when invoked, so `rtseg --help` starts fast and works without
torch, onnxruntime or TensorRT. Any RtsegError is printed as one line and exits with status 1,
and so is a missing optional package (naming its pip extra); a malformed command line (an
unknown option or command, a value of the wrong form) is one line too, with status 2, click's
own; anything else is a bug and keeps its traceback. Path options never check the file system
themselves (`readable=False`): a missing or unreadable file is the command's one-line error.

Signals: SIGINT, SIGTERM and SIGHUP are handled from the start of the command to its end
(rtseg.core.signals): whatever the command was doing (importing onnxruntime, loading a model,
running, writing its report), it ends with "rtseg: interrupted by SIGINT" and status 128 +
the signal number (130, 143, 129), never with a traceback, "Aborted!" or a false error caused
by the interruption. A run's outputs are closed and its report written first.
"""

from __future__ import annotations

import importlib
import sys

import click

from rtseg import __version__
from rtseg.core import signals
from rtseg.errors import EXTRA_OF, MissingDependencyError, RtsegError

# name -> (module, attribute, one-line help shown by `rtseg --help`)
COMMANDS = {
    "run": ("rtseg.cli.run", "run", "Segment a video, frames folder, camera or stream."),
    "export": ("rtseg.cli.export", "export", "Export a checkpoint to a model package (fp32/fp16/int8)."),
    "import": (
        "rtseg.cli.import_model",
        "import_model",
        "Wrap your own ONNX (float NCHW, logits) into a package.",
    ),
    "build-engine": ("rtseg.cli.engine", "build_engine", "Build a TensorRT engine from a model package."),
    "export-triton": ("rtseg.cli.triton", "export_triton", "Write a Triton model repository for a package."),
    "train": ("rtseg.cli.train", "train", "Train a segmentation model."),
    "eval": ("rtseg.cli.evaluate", "evaluate", "Evaluate a model on a labelled dataset (mIoU)."),
    "bench": ("rtseg.cli.bench", "bench", "Benchmark backends, precisions and sizes."),
    "batch": ("rtseg.cli.batch", "batch", "Segment an archive of videos on a Ray cluster (resumable)."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx, formatter):
        rows = [(n, COMMANDS[n][2]) for n in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            _exit_usage(exc)

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        with signals.handle_signals(exiting=standalone_mode):
            return super().main(*args, standalone_mode=standalone_mode, **kwargs)

    def invoke(self, ctx):
        try:
            result = super().invoke(ctx)
        except KeyboardInterrupt as exc:  # Interrupted, PipelineInterrupted or a plain Ctrl-C
            _exit_interrupted(getattr(exc, "signal_name", None) or signals.received() or "SIGINT")
        except RtsegError as exc:
            if signals.received():  # e.g. an import cut short by Ctrl-C looks like a missing package
                _exit_interrupted(signals.received())
            click.echo(f"rtseg: error: {exc}", err=True)
            sys.exit(1)
        except click.UsageError as exc:  # the command's own options, parsed inside invoke
            _exit_usage(exc)
        except ModuleNotFoundError as exc:  # an optional package imported without import_optional
            top = (exc.name or "").partition(".")[0]
            if signals.received() or top not in EXTRA_OF:
                _exit_unexpected(exc)
            click.echo(f"rtseg: error: {MissingDependencyError(top, EXTRA_OF[top])}", err=True)
            sys.exit(1)
        except Exception as exc:
            _exit_unexpected(exc)
        finally:
            signals.closing()
        if signals.received():  # came while the command was finishing its outputs
            _exit_interrupted(signals.received())
        return result


def _exit_usage(exc: click.UsageError):
    """A malformed command line: one line and status 2 (click's), not click's usage block; a
    command called without arguments that shows its help instead keeps doing so."""
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        raise exc
    where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    click.echo(f"rtseg: error: {exc.format_message().rstrip('.')}{where}", err=True)
    sys.exit(exc.exit_code)


def _exit_interrupted(signal_name: str):
    click.echo(f"rtseg: interrupted by {signal_name}", err=True)
    sys.exit(signals.exit_status(signal_name))


def _exit_unexpected(exc: Exception):
    """A bug keeps its traceback, unless a signal came first: then the interruption caused it
    (an import cut short by Ctrl-C raises ImportError) and the command was interrupted."""
    if signals.received():
        _exit_interrupted(signals.received())
    raise exc


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rtseg")
def main() -> None:
    """Real-time semantic segmentation of road video: ONNX Runtime, PyTorch, TensorRT."""


__all__ = ["main"]
