"""The training loop: one :class:`TrainPlan` in, a run directory out.

A plan is everything a spec's ``train`` block resolves to (a model factory, the loss, the data, the
optimizer, the schedule, metrics, selection) — built from a compiled spec by
:func:`bkdsl.train.plan.plan_from_spec`, or by hand in Python and tests. :func:`run` executes it:

1. validate the data, split it (seeded), fit the normalisation on the training split;
2. build the model under the seed, the optimizer and the schedule; on ``resume`` load ``last``;
3. per epoch: the permutation of (seed, epoch); per batch: augment (generator of seed, epoch, batch),
   normalise, forward (bf16 autocast if asked), loss — a NaN/Inf loss stops the run with E0607 and
   leaves the last good checkpoint alone — backward, LR multiplier of the schedule, optimizer step;
4. per epoch: evaluate the validation split (loss, loss terms, metrics in declared units), feed the
   schedule, append a record to ``metrics.jsonl``, save ``best`` when the selection improves and
   ``last`` always;
5. at the end: evaluate the test split with the selected weights, write ``final.json`` and plots.

Resume exactness: the state after a batch is a function of (weights, optimizer state, schedule state,
torch RNG state, epoch, batch index) and all of it is in the checkpoint; data order and augmentation
draws are recomputed from the seed, so a resumed run takes exactly the steps the killed one would have.
On the CPU with the same thread count this gives bit-identical weights (the test asserts equality).
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import signal
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from bkdsl.diagnostics import BkError, Span
from bkdsl.train import distributed as D
from bkdsl.train.augment import apply_all
from bkdsl.train.checkpoint import load_checkpoint, restore_rng, rng_tensors, save_checkpoint
from bkdsl.train.data import Dataset, batches_per_epoch, epoch_order, split_indices, validate
from bkdsl.train.metrics import Metric
from bkdsl.train.normalize import Normalizer
from bkdsl.train.optim import build_optimizer, load_optimizer_state, optimizer_state
from bkdsl.train.reports import data_dependent_init, model_reports
from bkdsl.train.schedules import LRSchedule, constant
from bkdsl.train.superposition import FunctionalModel
from bkdsl.train.teleport import attach_teleport
from bkdsl.train.sinks import open_sinks

log = logging.getLogger("bkdsl.train")

LossFn = Callable[[dict, dict], tuple[torch.Tensor, dict]]


@dataclass
class DataPlan:
    dataset: Dataset
    split: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    normalize: str = "none"
    normalize_fields: list[str] | None = None
    augment: list = field(default_factory=list)
    seed: int = 0
    name: str = "data"
    span: Span | None = None


@dataclass
class TrainConfig:
    batch: int = 32
    epochs: int | None = None
    steps: int | None = None
    seed: int = 0
    precision: str = "fp32"
    device: str = "auto"
    optimizer: str = "adam"
    optimizer_params: dict = field(default_factory=lambda: {"lr": 1e-3})
    schedule: Any = field(default_factory=constant)  # a registry Schedule (bkdsl.components.schedules)
    select: tuple[str, str] | None = ("val.loss", "min")  # (record key, min|max)
    metrics: list[Metric] = field(default_factory=list)
    plots: list[list[str]] = field(default_factory=list)
    checkpoint_every: int | None = None  # also save `last` every N optimizer steps (mid-epoch)
    grad_clip: float | None = None
    eval_batch: int | None = None
    compile: str | None = None        # torch.compile mode for the training forward (None: eager)
    channels_last: bool = False       # NHWC memory format for the model and its 4-D inputs
    resident: bool = False            # keep every split on the device (no host→device copy per batch)
    time_limit: float | None = None   # stop after the epoch in which the run's wall time passes this (s)
    checkpoint_interval: float | None = None  # end-of-epoch checkpoints at most this often (s); None: every epoch
    assert_manifolds: bool = False    # check manifold parameters/outputs after every forward (bkdsl.verify.runtime)
    model_plots: list[dict] = field(default_factory=list)  # latent(...), decode_line(...): need the model
    teleport: Any = None              # a `gradient` component (dyson_teleport): hooks on a stack (bkdsl/train/teleport.py)
    log_every: int | None = None      # a `step` record (mean training loss of the window, lr) every N steps
    eval_every: int | None = None     # an `eval` record (validation split) every N steps, besides each epoch's end
    span: Span | None = None
    spans: dict[str, Span] = field(default_factory=dict)  # per train key


@dataclass
class TrainPlan:
    name: str
    build_model: Callable[[], torch.nn.Module]
    loss: LossFn
    inputs: list[str]
    data: DataPlan
    config: TrainConfig
    record: dict = field(default_factory=dict)  # what the run was made from (spec, overrides, versions)


def resolve_device(name: str, span: Span | None = None) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BkError("E0801", f"device `{name}` is not available: torch sees no CUDA device", span=span,
                      help="use `--device cpu` or `--device auto`")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise BkError("E0609", f"unknown device `{name}`", span=span, help="use cpu, cuda or auto")
    return torch.device(name)


def _versions() -> dict:
    import bkdsl

    v = {"bkdsl": bkdsl.__version__, "torch": torch.__version__, "python": platform.python_version()}
    try:
        import geoopt

        v["geoopt"] = geoopt.__version__
    except Exception:  # pragma: no cover
        pass
    return v


class _Progress:
    """A rich progress bar on stderr (epoch, loss, throughput, ETA); silent when quiet or not rank 0."""

    def __init__(self, enabled: bool, total_steps: int, done: int):
        self.bar = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[rate]} samples/s"),
                            TextColumn("ETA"), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=False, refresh_per_second=4)
        self.task = self.bar.add_task("epoch", total=total_steps, completed=done, loss="-", rate="-")
        self.bar.start()

    def update(self, epoch: int, epochs: int, loss: float, rate: float) -> None:
        if self.bar is not None:
            self.bar.update(self.task, advance=1, description=f"epoch {epoch + 1}/{epochs}",
                            loss=f"{loss:.4g}", rate=f"{rate:,.0f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


#: the largest accepted `train.seed` (seeds feed 32-bit generators after per-epoch offsets)
MAX_SEED = 2 ** 32 - 1

class Trainer:
    def __init__(self, plan: TrainPlan, rundir: str | Path, *, resume: bool = False, quiet: bool = False):
        self.plan = plan
        self.cfg = plan.config
        self.rundir = Path(rundir)
        self.resume = resume
        self.quiet = quiet
        self.records: list[dict] = []
        self.stopped_by_time: int | None = None
        self._pending_best: tuple | None = None   # (weights, tensors, state) on the CPU, not yet written
        self._last_save_t = 0.0
        self.channels_last = False                # set in _run: cfg.channels_last on CUDA only
        self._window: list | None = None          # log_every: [loss·samples, samples] since the last step record

    # -- set-up -----------------------------------------------------------------------------------
    def _setup_logging(self) -> logging.Handler | None:
        if not self.dist.is_main:
            return None
        try:
            self.rundir.mkdir(parents=True, exist_ok=True)
            h = logging.FileHandler(self.rundir / "train.log", encoding="utf-8")
        except OSError as e:  # --out is a file, under a file, read-only, or the disk is full
            raise BkError("E0611", f"cannot write the run directory `{self.rundir}`: "
                                   f"{os.strerror(e.errno) if e.errno else type(e).__name__}",
                          help="point --out at a writable directory (it is created if missing)") from None
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger("bkdsl")
        root.addHandler(h)
        if root.level == logging.NOTSET or root.level > logging.INFO:
            root.setLevel(logging.INFO)
        # warnings (and errors) also on the console: a run's problems must not hide in train.log
        self._console = logging.StreamHandler(sys.stderr)
        self._console.setLevel(logging.WARNING)
        self._console.setFormatter(logging.Formatter("warning: %(message)s"))
        root.addHandler(self._console)
        return h

    def _prepare_data(self) -> None:
        dp = self.plan.data
        validate(dp.dataset, span=dp.span, source=f"data `{dp.name}`")
        missing = [n for n in self.plan.inputs if n not in dp.dataset.fields]
        if missing:
            raise BkError("E0601", f"the model reads {', '.join(f'`{m}`' for m in missing)} but data "
                                   f"`{dp.name}` has no such field", span=dp.span,
                          help=f"fields of `{dp.name}`: {', '.join(dp.dataset.fields)}; name the fields "
                               "after the model's inputs")
        idx = split_indices(len(dp.dataset), dp.split, dp.seed, dp.dataset.groups, span=dp.span)
        self.splits = {k: {n: t[v] for n, t in dp.dataset.fields.items()} for k, v in idx.items()}
        self.norm = Normalizer(dp.normalize, dp.normalize_fields, span=dp.span).fit(self.splits["train"])
        self.n_train = len(idx["train"])
        if self.cfg.resident and self.device.type == "cuda":
            # the whole dataset lives on the GPU: batches are gathered there, no host→device copy per step
            self.splits = {k: {n: t.to(self.device) for n, t in v.items()} for k, v in self.splits.items()}
            log.info("data resident on %s (%.1f MB)", self.device,
                     sum(t.numel() * t.element_size() for v in self.splits.values() for t in v.values()) / 1e6)
        if self.n_train < self.cfg.batch:
            log.warning("batch %d is larger than the training split (%d samples)", self.cfg.batch, self.n_train)

    def _to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def _autocast(self):
        if self.cfg.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _forward(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        ins = {k: batch[k] for k in self.plan.inputs}
        if self.channels_last:
            ins = {k: (v.contiguous(memory_format=torch.channels_last) if v.ndim == 4 else v) for k, v in ins.items()}
        out = model(**ins)
        if isinstance(out, torch.Tensor):
            raise BkError("E0609", "the model returns one unnamed tensor; the runner needs named outputs",
                          span=self.cfg.span, help="give the model's outputs names that match data fields")
        return {k: (v.float() if v.is_floating_point() else v) for k, v in out.items()}

    # -- evaluation -------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, split: str) -> dict[str, float]:
        data = self.splits[split]
        n = next(iter(data.values())).shape[0]
        if n == 0:
            return {}
        model = self.raw_model  # not the DDP wrapper: ranks may run different numbers of eval batches
        was_training = model.training
        model.eval()
        eb = self.cfg.eval_batch or self.cfg.batch
        sums: dict[str, torch.Tensor] = {}
        metrics = self.cfg.metrics
        order = D.shard(torch.arange(n), self.dist)
        weight = 1.0
        if len(order) == 0:
            # fewer samples than ranks: this rank evaluates one sample with weight 0, so that every rank
            # brings the same keys to the all-reduce below
            order, weight = torch.arange(1), 0.0
        for s in range(0, len(order), eb):
            idx = order[s:s + eb]
            raw = self._to_device({k: v[idx] for k, v in data.items()})
            batch = self.norm.apply(raw)
            with self._autocast():
                out = self._forward(model, batch)
                total, terms = self.plan.loss(out, batch)
            b = float(len(idx)) * weight
            acc = {"loss": total.detach().double() * b, "_n": torch.tensor(b, dtype=torch.float64, device=self.device)}
            for k, v in terms.items():
                acc[k] = v.detach().double() * b
            phys = {k: self.norm.invert(k, v) for k, v in out.items()}
            phys_f = None
            for m in metrics:
                if getattr(m, "needs_model", False):
                    if phys_f is None or phys_f[0] != m.axis:
                        phys_f = (m.axis, self._reflected_outputs(model, raw, m.axis))
                    s_, c_ = m.accumulate_pair(phys, phys_f[1], lambda n, x, ax=m.axis: self._flip_back(n, x, ax))
                else:
                    s_, c_ = m.accumulate(phys, raw)
                s_, c_ = s_ * weight, c_ * weight
                key = f"m.{m.name}"
                if m.reduce == "max":
                    sums[key] = torch.maximum(sums[key], s_) if key in sums else s_
                else:
                    sums[key] = sums.get(key, 0) + s_
                sums[f"c.{m.name}"] = sums.get(f"c.{m.name}", 0) + c_
            for k, v in acc.items():
                sums[k] = sums.get(k, 0) + v
        model.train(was_training)
        keys = sorted(sums)
        if self.dist.enabled:
            # ranks may have seen different key sets only if a rank got no batch: guard by shape
            vec = torch.stack([torch.as_tensor(sums[k], dtype=torch.float64, device=self.device) for k in keys])
            maxkeys = [i for i, k in enumerate(keys) if k.startswith("m.") and
                       next(m for m in metrics if f"m.{m.name}" == k).reduce == "max"]
            mx = vec[maxkeys].clone() if maxkeys else None
            D.all_sum(vec, self.dist)
            if mx is not None:
                D.all_max(mx, self.dist)
                vec[maxkeys] = mx
            sums = dict(zip(keys, vec))
        tot = float(sums["_n"])
        res = {f"{split}.loss": float(sums["loss"]) / tot}
        for k in keys:
            if k in ("loss", "_n") or k.startswith(("m.", "c.")):
                continue
            res[f"{split}.{k}"] = float(sums[k]) / tot
        for m in metrics:
            res[f"{split}.{m.name}"] = m.value(float(sums[f"m.{m.name}"]), float(sums[f"c.{m.name}"]))
        return res

    def _reflected_outputs(self, model, raw: dict[str, torch.Tensor], axis) -> dict[str, torch.Tensor]:
        """The model's physical outputs on the batch reflected along ``axis`` (parity metrics)."""
        from bkdsl.train.metrics import reflect

        info = self.plan.data.dataset.info
        batch_f = self.norm.apply(reflect(raw, axis, info, names=self.plan.inputs))
        with self._autocast():
            out_f = self._forward(model, batch_f)
        return {k: self.norm.invert(k, v) for k, v in out_f.items()}

    def _flip_back(self, name: str, x: torch.Tensor, axis) -> torch.Tensor:
        """Reflect an output back (F[D(E[ρ_F])]): by the data field of the same name's axes, else the
        input's."""
        from bkdsl.train.metrics import flip_axis_of

        info = self.plan.data.dataset.info
        dim, neg = flip_axis_of(axis, name, x, info)
        if dim is None and not neg and not isinstance(axis, int):
            for n in self.plan.inputs:  # an output with no data field: the layout of an input of equal rank
                inf = info.get(n)
                if inf is not None and inf.axes and axis in inf.axes and len(inf.axes) == x.ndim - 1:
                    dim = inf.axes.index(axis) + 1
                    break
        if dim is not None:
            return x.flip(dim)
        return -x if neg else x

    # -- checkpoints ------------------------------------------------------------------------------
    def _state(self, epoch: int, batch_idx: int, train_acc: dict) -> tuple[dict, dict]:
        ot, oj = optimizer_state(self.opt)
        tensors = {**ot, **self.norm.state_tensors(), **rng_tensors()}
        state = {"epoch": epoch, "batch": batch_idx, "global_step": self.global_step,
                 "optimizer": {"name": self.cfg.optimizer, **oj},
                 "schedule": self.sched.state_json(), "normalize": self.norm.state_json(),
                 "best": self.best, "train_acc": train_acc, "seed": self.cfg.seed,
                 "elapsed_s": self.elapsed(), "record": self.plan.record}
        return tensors, state

    def _save(self, name: str, epoch: int, batch_idx: int, train_acc: dict) -> None:
        if not self.dist.is_main:
            return
        if name == "last":
            self._flush_best()     # a held-back best goes to disk first, so `last` never points past it
        bad = [n for n, p in self.raw_model.named_parameters() if not torch.isfinite(p).all()]
        if bad:
            raise BkError("E0607", f"parameters became non-finite ({', '.join(bad[:3])}) at global step "
                                   f"{self.global_step}; training stopped", span=self.cfg.span,
                          help=f"the last good checkpoint is kept in {self.rundir / 'checkpoints'}; "
                               "lower the learning rate or clip gradients (`grad_clip`)")
        tensors, state = self._state(epoch, batch_idx, train_acc)
        if name == "best" and self.cfg.checkpoint_interval is not None:
            # written with the next `last` (so that `last`'s record of the best never runs ahead of the
            # file), or at the end: a CPU copy now, the disk later
            self._pending_best = tuple({k: v.detach().to("cpu", copy=True) for k, v in d.items()}
                                       for d in (self.raw_model.state_dict(), tensors)) + (state,)
            return
        save_checkpoint(self.rundir / "checkpoints", name, self.raw_model.state_dict(), tensors, state)
        if name == "last":
            self._last_save_t = time.perf_counter()

    def _checkpoint_due(self, last_epoch: bool) -> bool:
        """End-of-epoch `last` checkpoint: every epoch, or with ``checkpoint_interval`` when that many
        seconds have passed since the previous one (and always after the final epoch)."""
        iv = self.cfg.checkpoint_interval
        return iv is None or last_epoch or time.perf_counter() - self._last_save_t >= iv

    def _flush_best(self) -> None:
        """Write a `best` checkpoint held back by ``checkpoint_interval`` (main rank; no-op otherwise)."""
        if self._pending_best is not None and self.dist.is_main:
            w, t, st = self._pending_best
            save_checkpoint(self.rundir / "checkpoints", "best", w, t, st)
        self._pending_best = None

    def _load(self) -> dict:
        ck = load_checkpoint(self.rundir / "checkpoints" / "last.safetensors")
        try:
            self.raw_model.load_state_dict(ck.weights)
        except RuntimeError as e:
            raise BkError("E0606", f"checkpoint `{ck.path}` does not fit this model: {str(e).splitlines()[0]}",
                          help="the spec's model changed since the checkpoint was written; start a new run "
                               "directory") from None
        st = ck.state
        load_optimizer_state(self.opt, st["optimizer"], ck.tensors)
        self.sched.load_state(st["schedule"], self.cfg.spans.get("schedule", self.cfg.span))
        self.norm.load_state(st["normalize"], {k: v.to(torch.float64) for k, v in ck.tensors.items()
                                               if k.startswith("norm.")})
        restore_rng(ck.tensors)
        self.global_step = st["global_step"]
        self.best = st["best"]
        self.elapsed_before = st.get("elapsed_s", 0.0)
        log.info("resumed from %s: epoch %d, batch %d, global step %d", ck.path, st["epoch"], st["batch"],
                 self.global_step)
        return st

    def elapsed(self) -> float:
        return self.elapsed_before + (time.perf_counter() - self.t0)

    # -- records ----------------------------------------------------------------------------------
    def _write_record(self, rec: dict) -> None:
        self.records.append(rec)
        if self.dist.is_main:
            with open(self.rundir / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(rec) + "\n")
                f.flush()
            for s in getattr(self, "sinks", ()):
                try:
                    s.write(rec)
                except Exception as e:  # a sink (TensorBoard, MLflow) must not stop training; say so once
                    log.warning("metric sink %s failed and is closed: %s: %s", type(s).__name__, type(e).__name__, e)
                    self.sinks = [x for x in self.sinks if x is not s]

    def _truncate_records(self, upto_step: int) -> None:
        """On resume: drop records written after the checkpoint (the epochs that will be replayed)."""
        from bkdsl.train.plots import read_records

        p = self.rundir / "metrics.jsonl"
        # a finished run's `test` record goes too: the resumed run writes its own at its end
        keep = [r for r in read_records(p) if r.get("global_step", 0) <= upto_step and r.get("event") != "test"]
        self.records = keep
        if self.dist.is_main:
            tmp = p.with_suffix(".jsonl.tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in keep), encoding="utf-8")
            os.replace(tmp, p)

    def _units(self) -> dict[str, str]:
        return {m.name: m.unit for m in self.cfg.metrics if m.unit}

    def _improved(self, rec: dict) -> bool:
        if self.cfg.select is None:
            return False
        key, mode = self.cfg.select
        if key not in rec:
            raise BkError("E0609", f"select: no value `{key}` in the evaluation record",
                          span=self.cfg.spans.get("select", self.cfg.span),
                          help=f"known: {', '.join(k for k in rec if '.' in k)}")
        v = rec[key]
        if not math.isfinite(v):
            return False
        better = self.best is None or (v < self.best["value"] if mode == "min" else v > self.best["value"])
        if better:
            self.best = {"key": key, "value": v, "epoch": rec["epoch"], "global_step": rec["global_step"]}
        return better

    # -- the run ----------------------------------------------------------------------------------
    def run(self) -> dict:
        cfg = self.cfg
        if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or not 0 <= cfg.seed <= MAX_SEED:
            raise BkError("E0609", f"`seed` must be an integer in [0, {MAX_SEED}], got {str(cfg.seed)[:30]}",
                          span=cfg.spans.get("seed", cfg.span), help="seeds are 32-bit: e.g. `seed = 0`")
        self.device = resolve_device(cfg.device, cfg.spans.get("device", cfg.span))
        if cfg.precision not in ("fp32", "bf16"):
            raise BkError("E0609", f"unknown precision `{cfg.precision}`", span=cfg.spans.get("precision", cfg.span),
                          help="use fp32 or bf16")
        self.dist = D.setup(self.device)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        handler = self._setup_logging()
        self.sinks = []
        try:
            return self._run()
        finally:
            for s in self.sinks:
                s.close()
            if handler is not None:
                logging.getLogger("bkdsl").removeHandler(handler)
                logging.getLogger("bkdsl").removeHandler(self._console)
                handler.close()
            D.teardown(self.dist)

    def _run(self) -> dict:
        cfg, dist = self.cfg, self.dist
        self.t0 = time.perf_counter()
        self.elapsed_before = 0.0
        if cfg.epochs is None and cfg.steps is None:
            raise BkError("E0609", "the train block needs `epochs` or `steps`", span=cfg.span,
                          help="add `epochs = 10` (or `steps = 1000`)")
        if cfg.batch < max(1, dist.world):
            raise BkError("E0609", f"batch {cfg.batch} is smaller than the number of processes ({dist.world})",
                          span=cfg.spans.get("batch", cfg.span), help="the batch is global: use batch >= processes")
        if self.device.type == "cpu":
            torch.use_deterministic_algorithms(True, warn_only=True)
        self._prepare_data()
        torch.manual_seed(cfg.seed)
        self.raw_model = self.plan.build_model().to(self.device)
        if cfg.assert_manifolds:
            from bkdsl.verify.runtime import assert_manifolds

            self.manifold_guard = assert_manifolds(self.raw_model)
            log.info("manifold assertions on: every manifold parameter and output is checked after each forward")
        # channels-last is a CUDA speed key (tensor-core convolutions in NHWC). On the CPU it buys nothing,
        # and the torch 2.13 CPU build corrupts memory in the NHWC convolution backward of the u236 ResNet
        # on CPUs without AVX-512 (double free / segfault), so it is applied on CUDA only.
        self.channels_last = bool(cfg.channels_last) and self.device.type == "cuda"
        if cfg.channels_last and not self.channels_last:
            log.info("channels_last ignored on %s (a CUDA speed key)", self.device.type)
        if self.channels_last:
            self.raw_model = self.raw_model.to(memory_format=torch.channels_last)
        self.raw_model.train()
        bind = getattr(self.plan.loss, "bind_model", None)
        if callable(bind):  # a loss that reads parameters or re-applies the model (semantics/lossexpr.py)
            bind(self.raw_model, self.plan.inputs)
        if cfg.teleport is not None:
            self.teleport = attach_teleport(self.raw_model, cfg.teleport, span=cfg.spans.get("teleport", cfg.span))
        self.opt = build_optimizer(cfg.optimizer, cfg.optimizer_params, self.raw_model,
                                   span=cfg.spans.get("optimizer", cfg.span))
        self.global_step, self.best = 0, None
        nb = batches_per_epoch(self.n_train, cfg.batch)
        if dist.enabled and self.n_train % cfg.batch and self.n_train % cfg.batch < dist.world:
            nb -= 1  # a last batch smaller than the number of ranks would leave a rank without samples
        total_steps = cfg.steps if cfg.steps is not None else cfg.epochs * nb
        epochs = math.ceil(total_steps / nb)
        self.sched = LRSchedule.bind(cfg.schedule, self.opt, steps_per_epoch=nb, total_steps=total_steps)
        start_epoch, start_batch = 0, 0
        train_acc = {"sum": 0.0, "n": 0.0, "samples": 0}
        if self.resume:
            st = self._load()
            start_epoch, start_batch = st["epoch"], st["batch"]
            train_acc = dict(st["train_acc"])
            self._truncate_records(self.global_step)
        elif dist.is_main:
            (self.rundir / "metrics.jsonl").write_text("")
        if dist.is_main:
            self.sinks = open_sinks(self.rundir, resume_records=self.records if self.resume else None,
                                    resume_step=self.global_step if self.resume else None,
                                    run_name=self.plan.name, params=dict(self.plan.record))
        if not self.resume:
            first = self.norm.apply(self._to_device({k: v[:cfg.batch] for k, v in self.splits["train"].items()}))
            n_init = data_dependent_init(self.raw_model, lambda m: self._forward(m, first))
            if n_init:
                log.info("data-dependent initialisation of %d modules on one training batch", n_init)
        # find_unused_parameters: routed layers (mixture of experts) leave the experts no token chose
        # without a gradient in a step; DDP must not wait for them.
        self.model = (torch.nn.parallel.DistributedDataParallel(
            self.raw_model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
            find_unused_parameters=True)
            if dist.enabled else self.raw_model)
        if cfg.compile:
            # the training forward only; evaluation runs the eager module (same parameters)
            self.model = torch.compile(self.model, mode=None if cfg.compile == "default" else cfg.compile)
            log.info("torch.compile(mode=%s) of the training forward", cfg.compile)
        log.info("training `%s`: %d samples (train %d), %d steps/epoch, %d epochs, device %s, world %d",
                 self.plan.name, len(self.plan.data.dataset), self.n_train, nb, epochs, self.device, dist.world)
        kill_at = int(os.environ.get("BKDSL_FAULT_KILL_AT_STEP", "-1"))  # fault injection for the resume test
        progress = _Progress(dist.is_main and not self.quiet, total_steps, self.global_step)
        train = self.splits["train"]
        info = self.plan.data.dataset.info
        seed = self.plan.data.seed
        # samples/s leaves out warm-up steps: this process's first step at each batch size (kernel
        # compilation and shape specialisation, autotuning, cuDNN's algorithm search — an epoch's short
        # last batch recompiles Triton kernels specialised on divisibility); their time is reported
        # alone as warmup_s, the very first as first_step_s
        samples_seen, t_steps, self.first_step_s, self.warmup_s, warm_sizes = 0, 0.0, None, 0.0, set()
        stopped = None
        try:
            for epoch in range(start_epoch, epochs):
                order = epoch_order(self.n_train, cfg.seed, epoch)
                first = start_batch if epoch == start_epoch else 0
                if first == 0:
                    train_acc = {"sum": 0.0, "n": 0.0, "samples": 0}
                for b in range(first, nb):
                    if self.global_step >= total_steps:
                        break
                    if self.global_step == kill_at:
                        os.kill(os.getpid(), signal.SIGKILL)
                    ts = time.perf_counter()
                    idx = D.shard(order[b * cfg.batch:(b + 1) * cfg.batch], dist)
                    if self.cfg.resident and self.device.type == "cuda":
                        idx = idx.to(self.device, non_blocking=True)
                    raw = {k: v[idx] for k, v in train.items()}
                    raw = apply_all(self.plan.data.augment, raw, info, seed * 7 + dist.rank, epoch, b)
                    batch = self.norm.apply(self._to_device(raw))
                    with self._autocast():
                        out = self._forward(self.model, batch)
                        loss, terms = self.plan.loss(out, batch)
                    finite = bool(torch.isfinite(loss.detach()).all())
                    if D.any_flag(not finite, dist, self.device):
                        shown = ", ".join(f"{k} = {float(v):.4g}" for k, v in terms.items())
                        raise BkError("E0607", f"the loss is {float(loss):g} at epoch {epoch + 1}, batch "
                                               f"{b + 1} (global step {self.global_step + 1}); training stopped"
                                               + (f" — terms: {shown}" if shown else ""),
                                      span=cfg.spans.get("loss", cfg.span),
                                      help=f"the last good checkpoint is kept in {self.rundir / 'checkpoints'}; "
                                           "lower the learning rate, clip gradients (`grad_clip`), or check "
                                           "the data and the normalisation")
                    if getattr(self.opt, "wants_closure", False):  # L-BFGS re-evaluates in its line search
                        self.opt.prepare(loss, lambda: self.plan.loss(self._forward(self.model, batch), batch)[0],
                                         self._autocast)
                    self.opt.zero_grad(set_to_none=True)
                    if getattr(self.opt, "needs_backward", True):
                        loss.backward()
                    if cfg.grad_clip:
                        torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), cfg.grad_clip)
                    if getattr(self.opt, "functional_step", False):  # superposition optimizers (bkdsl/train/superposition.py)
                        self.opt.step_with(FunctionalModel(self.raw_model, self.plan.inputs, self.plan.loss), batch)
                    else:
                        self.opt.step()
                    self.sched.after_step()
                    self.global_step += 1
                    nloc = len(idx)
                    train_acc["sum"] += float(loss.detach()) * nloc
                    train_acc["n"] += nloc
                    train_acc["samples"] += nloc * dist.world
                    dt_step = time.perf_counter() - ts
                    if nloc not in warm_sizes:
                        warm_sizes.add(nloc)
                        self.warmup_s += dt_step
                        if self.first_step_s is None:
                            self.first_step_s = dt_step
                    else:
                        samples_seen += nloc * dist.world
                        t_steps += dt_step
                    progress.update(epoch, epochs, float(loss.detach()), samples_seen / max(t_steps, 1e-9))
                    self._every_steps(epoch, b + 1 < nb, float(loss.detach()), nloc)
                    if cfg.checkpoint_every and self.global_step % cfg.checkpoint_every == 0 and b + 1 < nb:
                        self._save("last", epoch, b + 1, train_acc)
                        D.barrier(dist)
                self._end_of_epoch(epoch, train_acc)
                last_epoch = epoch + 1 >= epochs or self.global_step >= total_steps
                if cfg.time_limit is not None and self.elapsed() >= cfg.time_limit and not last_epoch:
                    log.info("time limit %.0f s reached after epoch %d", cfg.time_limit, epoch + 1)
                    self.stopped_by_time = epoch + 1
                    last_epoch = True
                if self._checkpoint_due(last_epoch):
                    self._save("last", epoch + 1, 0, train_acc)
                D.barrier(dist)
                if last_epoch:
                    break
        except BkError as e:
            if e.code == "E0607":
                stopped = e
            else:
                raise
        finally:
            progress.close()
        self.samples_per_s = samples_seen / max(t_steps, 1e-9)
        if stopped is not None:
            self._finish(stopped)
            raise stopped
        return self._finish(None)

    def _every_steps(self, epoch: int, mid_epoch: bool, loss: float, n: int) -> None:
        """``log_every``: a `step` record with the mean training loss since the last one (this rank's
        samples); ``eval_every``: an `eval` record of the validation split (skipped at an epoch's end,
        which evaluates anyway)."""
        cfg, step = self.cfg, self.global_step
        if cfg.log_every:
            acc = self._window or [0.0, 0]
            acc = [acc[0] + loss * n, acc[1] + n]
            self._window = acc
            if step % cfg.log_every == 0:
                self._write_record({"event": "step", "epoch": epoch + 1, "global_step": step,
                                    "train.loss": acc[0] / max(acc[1], 1), "lr": self.opt.param_groups[0]["lr"],
                                    "elapsed_s": round(self.elapsed(), 3)})
                self._window = None
        if cfg.eval_every and mid_epoch and step % cfg.eval_every == 0:
            self._write_record({"event": "eval", "epoch": epoch + 1, "global_step": step,
                                **self.evaluate("val"), "elapsed_s": round(self.elapsed(), 3)})

    def _end_of_epoch(self, epoch: int, train_acc: dict) -> dict:
        ta = torch.tensor([train_acc["sum"], train_acc["n"]], dtype=torch.float64, device=self.device)
        D.all_sum(ta, self.dist)
        rec = {"event": "epoch", "epoch": epoch + 1, "global_step": self.global_step,
               "train.loss": float(ta[0] / ta[1]) if float(ta[1]) else None,
               "lr": self.opt.param_groups[0]["lr"]}
        rec.update(model_reports(self.model))
        rec.update(self.evaluate("val"))
        rec["elapsed_s"] = round(self.elapsed(), 3)
        if self.cfg.select is not None and self.cfg.select[0] in rec:
            self.sched.observe(rec[self.cfg.select[0]])
        elif "val.loss" in rec:
            self.sched.observe(rec["val.loss"])
        rec["units"] = self._units()
        if self._improved(rec):
            rec["best"] = True
            self._save("best", epoch + 1, 0, train_acc)
        self._write_record(rec)
        log.info("epoch %d: %s", epoch + 1, ", ".join(f"{k} {v:.5g}" for k, v in rec.items()
                                                       if isinstance(v, float) and k != "elapsed_s"))
        return rec

    def _finish(self, stopped: BkError | None) -> dict:
        cfg = self.cfg
        test_from = "last"
        self._flush_best()        # also after a stop: the held-back best was finite when it was taken
        if stopped is None and self.best is not None and (self.rundir / "checkpoints" / "best.safetensors").exists():
            ck = load_checkpoint(self.rundir / "checkpoints" / "best.safetensors")
            self.raw_model.load_state_dict(ck.weights)
            test_from = "best"
        test = self.evaluate("test") if stopped is None else {}
        if stopped is None:
            self._write_record({"event": "test", "epoch": self.records[-1]["epoch"] if self.records else 0,
                                "global_step": self.global_step, **test, "units": self._units()})
        final = {
            "status": "completed" if stopped is None else f"stopped: {stopped.diagnostic.message}",
            "train": self.plan.name, "test": test, "test_weights": test_from, "best": self.best,
            "epochs": max([r["epoch"] for r in self.records if r.get("event") == "epoch"], default=0),
            "global_step": self.global_step, "wall_time_s": round(self.elapsed(), 3),
            "samples_per_s": round(self.samples_per_s, 1),
            "first_step_s": None if self.first_step_s is None else round(self.first_step_s, 3),
            "warmup_s": round(self.warmup_s, 3), "device": str(self.device),
            "device_name": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else platform.processor() or platform.machine(),
            "world_size": self.dist.world, "precision": cfg.precision, "units": self._units(),
            "speed": {"compile": cfg.compile, "channels_last": cfg.channels_last, "resident": cfg.resident,
                      "channels_last_applied": self.channels_last},
            "time_limit_s": cfg.time_limit, "stopped_by_time_limit_after_epoch": self.stopped_by_time,
            "versions": _versions(), "record": self.plan.record,
        }
        if self.dist.is_main:
            tmp = self.rundir / "final.json.tmp"
            try:
                tmp.write_text(json.dumps(final, indent=2) + "\n", encoding="utf-8")
                os.replace(tmp, self.rundir / "final.json")
            except OSError as e:
                raise BkError("E0611", f"cannot write `{self.rundir / 'final.json'}`: "
                                       f"{os.strerror(e.errno) if e.errno else type(e).__name__}",
                              help="free disk space; the checkpoints written so far are intact") from None
            try:
                from bkdsl.train import plots

                plots.draw(self.rundir, cfg.plots,
                           plots.metric_units(cfg.metrics, self.plan.data.dataset.info, self._units()))
            except Exception as e:  # a plot must never lose a finished run; say why it is missing
                log.warning("plots were not drawn: %s: %s", type(e).__name__, e)
            if cfg.model_plots and stopped is None:
                try:
                    from bkdsl.train import plots

                    plots.draw_model(self.rundir, cfg.model_plots, self)
                except Exception as e:
                    log.warning("model plots were not drawn: %s: %s", type(e).__name__, e)
        log.info("finished: %s", json.dumps({k: final[k] for k in ("status", "test", "wall_time_s", "samples_per_s")}))
        return final


def run(plan: TrainPlan, rundir: str | Path, *, resume: bool = False, quiet: bool = False) -> dict:
    return Trainer(plan, rundir, resume=resume, quiet=quiet).run()
