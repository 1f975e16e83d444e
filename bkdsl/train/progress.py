"""Progress of data generation on the console (the u236 default run solves 20 000 densities for minutes).

A data generator that can report progress takes a ``progress(info)`` callback, called after each batch
with ``info = {"done": samples attempted, "samples": total, "converged": in this batch, "wall_s": …}``
(:func:`bkdsl.physics.dataset.generate_nuclear_densities`). :func:`generation_progress` returns such a
callback: a line on stderr at most every ``every_s`` seconds and at the end —

    generating nuclear_densities: 1 280/20 000 samples (6 %), 41 s, ETA 10 min

— and the same line in the run's log. ``bkdsl train --quiet`` turns the console line off for the data
loading with :func:`console` (a context manager that restores the previous setting).
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator

log = logging.getLogger("bkdsl.data")

#: off under `bkdsl train --quiet` (see :func:`console`); the log line is written either way
enabled = True


@contextmanager
def console(on: bool) -> Iterator[None]:
    """Print progress lines on the console (``on``) or not, inside the block only."""
    global enabled
    before, enabled = enabled, on
    try:
        yield
    finally:
        enabled = before


def _duration(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def progress_line(name: str, info: dict) -> str:
    done, total = int(info.get("done", 0)), int(info.get("samples", 0))
    wall = float(info.get("wall_s", 0.0))
    frac = done / total if total > 0 else 0.0
    eta = f", ETA {_duration(wall * (1 - frac) / frac)}" if 0 < frac < 1 else ""
    pct = f" ({100 * frac:.0f} %)" if total > 0 else ""
    return f"generating {name}: {_n(done)}/{_n(total)} samples{pct}, {_duration(wall)}{eta}"


def _n(k: int) -> str:
    return f"{k:_}".replace("_", " ")


def generation_progress(name: str, every_s: float = 5.0, stream=None) -> Callable[[dict], None]:
    """A ``progress(info)`` callback that prints :func:`progress_line` at most every ``every_s`` seconds
    (and always when ``done == samples``)."""
    last = [float("-inf")]

    def report(info: dict) -> None:
        now = time.monotonic()
        final = int(info.get("done", 0)) >= int(info.get("samples", 0)) > 0
        if not final and now - last[0] < every_s:
            return
        last[0] = now
        line = progress_line(name, info)
        log.info(line)
        if enabled:
            print(line, file=stream or sys.stderr, flush=True)

    return report
