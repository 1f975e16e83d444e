"""Metric sinks: where the runner's records go besides ``metrics.jsonl``.

Every record the runner writes (``event`` = ``step`` every ``log_every`` optimizer steps, ``eval`` every
``eval_every`` steps, ``epoch`` at each epoch's end, ``test`` at the end) is passed to each sink:

``CSVSink``          always: ``metrics.csv`` in long form — ``global_step,epoch,event,key,value`` — one
                     row per numeric value, so records with different keys share one header
                     (``pandas.read_csv(...).pivot_table(index="global_step", columns="key")``).
``TensorBoardSink``  when the ``tensorboard`` package is installed (the optional extra ``bkdsl[tracking]``):
                     ``torch.utils.tensorboard.SummaryWriter`` under ``RUNDIR/tensorboard``, one scalar per
                     key (``<event>/<key>``) at ``global_step``; ``tensorboard --logdir runs`` shows them.
``MLflowSink``       when ``mlflow`` is installed *and* ``MLFLOW_TRACKING_URI`` is set (MLflow is a server
                     the user chose; bkdsl never starts one): ``mlflow.log_metrics`` per record.

Resume: records after the checkpoint are replayed, so :meth:`CSVSink.rewrite` rebuilds the CSV from the
kept ``metrics.jsonl`` records and TensorBoard is opened with ``purge_step`` = the resumed global step
(TensorBoard then drops the events written after it). Only rank 0 writes.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

CSV_HEADER = ("global_step", "epoch", "event", "key", "value")


class Sink(Protocol):
    def write(self, rec: dict) -> None: ...
    def close(self) -> None: ...


def scalars(rec: dict) -> dict[str, float]:
    """The numeric values of a record (booleans and bookkeeping keys left out)."""
    skip = {"epoch", "global_step", "event", "best", "units"}
    return {k: float(v) for k, v in rec.items()
            if k not in skip and isinstance(v, (int, float)) and not isinstance(v, bool)}


class CSVSink:
    def __init__(self, rundir: Path, records: list[dict] | None = None):
        self.path = Path(rundir) / "metrics.csv"
        if records is not None:
            self.rewrite(records)
        elif not self.path.exists():
            self.rewrite([])

    def rewrite(self, records: list[dict]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(CSV_HEADER)
            for r in records:
                w.writerows(self._rows(r))
        os.replace(tmp, self.path)

    @staticmethod
    def _rows(rec: dict) -> list[tuple]:
        return [(rec.get("global_step", ""), rec.get("epoch", ""), rec.get("event", ""), k, repr(v))
                for k, v in scalars(rec).items()]

    def write(self, rec: dict) -> None:
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(self._rows(rec))

    def close(self) -> None:
        pass


def tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401  (torch.utils.tensorboard needs the package itself)
    except ImportError:
        return False
    return True


class TensorBoardSink:
    def __init__(self, rundir: Path, purge_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(Path(rundir) / "tensorboard"), purge_step=purge_step)

    def write(self, rec: dict) -> None:
        step = int(rec.get("global_step", 0))
        ev = rec.get("event", "record")
        for k, v in scalars(rec).items():
            if math.isfinite(v):  # TensorBoard draws NaN as a gap at best; the CSV and JSONL keep it
                self.writer.add_scalar(f"{ev}/{k}", v, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class MLflowSink:
    def __init__(self, run_name: str, params: dict):
        import mlflow

        self.mlflow = mlflow
        self.run = mlflow.start_run(run_name=run_name)
        mlflow.log_params({k: str(v)[:250] for k, v in params.items()})

    def write(self, rec: dict) -> None:
        vals = {f"{rec.get('event', 'record')}.{k}": v for k, v in scalars(rec).items() if math.isfinite(v)}
        if vals:
            self.mlflow.log_metrics(vals, step=int(rec.get("global_step", 0)))

    def close(self) -> None:
        self.mlflow.end_run()


def open_sinks(rundir: Path, *, resume_records: list[dict] | None, resume_step: int | None,
               run_name: str, params: dict) -> list[Sink]:
    """The sinks of a run (rank 0): CSV always, TensorBoard and MLflow when available."""
    sinks: list[Sink] = [CSVSink(rundir, resume_records if resume_records is not None else [])]
    if tensorboard_available():
        try:
            sinks.append(TensorBoardSink(rundir, purge_step=resume_step))
        except Exception as e:  # a sink must not stop training; say why it is missing
            log.warning("TensorBoard sink not opened: %s: %s", type(e).__name__, e)
    if os.environ.get("MLFLOW_TRACKING_URI"):
        try:
            sinks.append(MLflowSink(run_name, params))
        except ImportError:
            log.warning("MLFLOW_TRACKING_URI is set but mlflow is not installed: no MLflow sink")
        except Exception as e:
            log.warning("MLflow sink not opened: %s: %s", type(e).__name__, e)
    return sinks
