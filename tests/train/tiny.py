"""A tiny training plan built by hand (no compiler): Woods–Saxon profiles from shape parameters.

Used by the runner tests in-process and, through ``python -m tests.train.tiny RUNDIR [--resume]``, by
the SIGKILL/resume and the torchrun tests as a separate process.
"""

from __future__ import annotations

import sys

import torch

from bkdsl.train.loop import DataPlan, TrainConfig, TrainPlan, run
from bkdsl.train.metrics import Metric
from bkdsl.train.schedules import schedule
from bkdsl.components.data_sources import woods_saxon_dataset


class TinyNet(torch.nn.Module):
    def __init__(self, nr: int = 16, width: int = 32):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(2, width), torch.nn.Tanh(), torch.nn.Linear(width, nr + 1))

    def forward(self, shape):
        y = self.net(shape)
        return {"rho": y[:, :-1], "A": y[:, -1:]}


def mse_loss(out, batch):
    a = ((out["rho"] - batch["rho"]) ** 2).mean()
    b = ((out["A"] - batch["A"]) ** 2).mean()
    return a + b, {"mse_rho": a, "mse_A": b}


def tiny_plan(samples: int = 192, epochs: int = 4, batch: int = 16, lr: float = 3e-3, **cfg) -> TrainPlan:
    ds = woods_saxon_dataset(samples, 16, 0.5, (3.0, 7.0), (0.45, 0.65), 0.16, seed=1)
    data = DataPlan(ds, [0.75, 0.125, 0.125], "minmax", seed=3, name="ws")
    cfg.setdefault("schedule", schedule("cosine", warmup=0.5))
    cfg.setdefault("metrics", [Metric("mae", "rho", "rho", "fm^-3", 1.0), Metric("rmse", "A", "A", None, 1.0)])
    cfg.setdefault("device", "cpu")
    conf = TrainConfig(batch=batch, epochs=epochs, seed=5, optimizer="adam",
                       optimizer_params={"lr": lr}, **cfg)
    return TrainPlan("tiny", TinyNet, mse_loss, ["shape"], data, conf)


if __name__ == "__main__":
    torch.set_num_threads(1)
    rundir = sys.argv[1]
    resume = "--resume" in sys.argv
    final = run(tiny_plan(epochs=int(dict(a.split("=") for a in sys.argv[2:] if "=" in a).get("epochs", 4))),
                rundir, resume=resume, quiet=True)
    print(final["status"])
