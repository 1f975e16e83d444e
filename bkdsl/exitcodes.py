"""The exit codes of every ``bkdsl`` command, and the one place exceptions become them.

====  =====================================================================================
0     success
1     the input has errors (diagnostics printed: spec, ``--set`` value, data, checkpoint)
2     usage error (argparse: unknown option, missing argument)
3     internal error — a bug in bkdsl; the traceback is shown with ``--debug``
130   interrupted (Ctrl-C)
====  =====================================================================================
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from bkdsl.diagnostics import BkError, BkErrors, Diagnostic, render_all
from bkdsl.plugins import load_plugins

EXIT_OK, EXIT_DIAG, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def print_diagnostics(diags: list[Diagnostic], sources: dict[str, str], fmt: str) -> None:
    if not diags:
        if fmt == "json":
            print("[]")
        return
    out = render_all(diags, sources, fmt)
    print(out, file=sys.stdout if fmt == "json" else sys.stderr)


def run_command(args: argparse.Namespace) -> int:
    """Run a parsed command under the exit-code table; diagnostics are printed once (under torchrun by
    rank 0 only; an internal error by every rank, so a crash on rank 1 is not silent)."""
    fmt = getattr(args, "format", "text")
    fn = getattr(args, "fn", None) or getattr(args, "func")  # subcommands from other modules set `func`
    rank = int(os.environ.get("RANK", "0"))
    try:
        load_plugins(getattr(args, "plugin", None) or [])
        rc = fn(args)
        return int(rc or 0)
    except BkErrors as e:
        if rank == 0:
            print_diagnostics(e.diagnostics, e.sources, fmt)
        return EXIT_DIAG
    except BkError as e:
        if rank == 0:
            print_diagnostics([e.diagnostic], {}, fmt)
        return EXIT_DIAG
    except KeyboardInterrupt:
        print("interrupted" + ("; resume with --resume" if getattr(args, "command", "") == "train" else ""),
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # a bug in bkdsl, never the user's fault
        where = f" (rank {rank})" if rank else ""
        print(f"internal error[X0001]{where}: {type(e).__name__}: {e}", file=sys.stderr)
        if getattr(args, "debug", False):
            traceback.print_exc()
        else:
            print("   = note: this is a bug in bkdsl; rerun with --debug for the traceback and report it",
                  file=sys.stderr)
        return EXIT_INTERNAL


