"""Shared by the training-physics benches (teleport, superposition, holographic): a spec's train
block turned into normalised tensors and a step loop, with the run's wall-clock and evaluation kept
apart (evaluation time is not charged to the optimizer).

CPU numbers from these scripts are measured on a shared machine: every contender of one bench runs
in the same process on the same inputs, interleaved seed by seed, so load drifts hit all of them.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable

import torch

from bkdsl.api import compile_file
from bkdsl.train.data import split_indices
from bkdsl.train.normalize import Normalizer
from bkdsl.train.plan import plan_from_compiled

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]


def env() -> dict:
    return {"torch": torch.__version__, "device": "cpu", "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(), "python": platform.python_version(),
            "load_avg_1min": os.getloadavg()[0],
            "note": "shared 2-core machine (8 sessions); contenders interleaved in one process"}


def write(name: str, payload: dict, out: str | None = None) -> Path:
    path = Path(out) if out else RESULTS / f"{datetime.date.today().isoformat()}-{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"name": name, "env": env(), **payload}, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return path


class Task:
    """A spec's train block as tensors: the train/val splits normalised like the runner does."""

    def __init__(self, spec: str, overrides: dict[str, str] | None = None):
        self.compiled = compile_file(ROOT / "specs" / spec, overrides=overrides)
        self.plan = plan_from_compiled(self.compiled, spec_path=str(ROOT / "specs" / spec),
                                       overrides=overrides, device="cpu")
        dp = self.plan.data
        idx = split_indices(len(dp.dataset), dp.split, dp.seed, dp.dataset.groups)
        raw = {k: {n: t[v] for n, t in dp.dataset.fields.items()} for k, v in idx.items()}
        norm = Normalizer(dp.normalize, dp.normalize_fields).fit(raw["train"])
        self.train = norm.apply(raw["train"])
        self.val = norm.apply(raw["val"])
        self.n_train = next(iter(self.train.values())).shape[0]
        self.batch = self.plan.config.batch

    def model(self, seed: int) -> torch.nn.Module:
        torch.manual_seed(seed)
        return self.plan.build_model()

    def forward(self, model, batch):
        out = model(**{k: batch[k] for k in self.plan.inputs})
        return {k: v.float() for k, v in out.items()}

    def loss(self, model, batch) -> torch.Tensor:
        return self.plan.loss(self.forward(model, batch), batch)[0]

    @torch.no_grad()
    def val_loss(self, model) -> float:
        was = model.training
        model.eval()
        v = float(self.loss(model, self.val))
        model.train(was)
        return v

    def batches(self, seed: int):
        """An endless stream of training batches, reshuffled per epoch from ``seed``."""
        g = torch.Generator().manual_seed(seed)
        while True:
            perm = torch.randperm(self.n_train, generator=g)
            for s in range(0, self.n_train - self.batch + 1, self.batch):
                i = perm[s:s + self.batch]
                yield {k: v[i] for k, v in self.train.items()}


def train_run(task: Task, model: torch.nn.Module, opt, step: Callable[[dict], Any], *, seed: int,
              max_steps: int, time_budget: float | None = None, eval_every: int = 25,
              target: float | None = None) -> dict:
    """Run ``step(batch)`` until ``max_steps`` or ``time_budget`` seconds of optimizer time (evaluation
    excluded). Returns the curve [(step, train_s, val_loss)], steps/time to ``target`` (None if never).

    Optimizer time is this process's **CPU time** (time.process_time, one thread): on a machine shared
    by many sessions the wall clock of a step varies several-fold with the load, its CPU time does not.
    The wall clock is reported beside it (``wall_s``)."""
    curve, t_train, n, wall = [(0, 0.0, task.val_loss(model))], 0.0, 0, 0.0
    hit = None
    for batch in task.batches(seed):
        t0, w0 = time.process_time(), time.perf_counter()
        step(batch)
        t_train += time.process_time() - t0
        wall += time.perf_counter() - w0
        n += 1
        if n % eval_every == 0 or n == max_steps or (time_budget is not None and t_train >= time_budget):
            v = task.val_loss(model)
            curve.append((n, round(t_train, 4), v))
            if not (v == v) or v == float("inf"):
                break
            if target is not None and hit is None and v <= target:
                hit = {"steps": n, "train_s": round(t_train, 4)}
        if n >= max_steps or (time_budget is not None and t_train >= time_budget):
            break
    return {"curve": curve, "final_val": curve[-1][2], "steps": n, "train_s": round(t_train, 3),
            "wall_s": round(wall, 3), "target_hit": hit}
