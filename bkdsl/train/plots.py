"""Plots of a run, drawn from ``metrics.jsonl`` (matplotlib, Agg backend, PNG).

``plots/loss.png`` always: training and validation loss per epoch (log scale when positive).
A spec asks for more with ``plots = [curve(val.mae_E), ...]``: each ``curve(key, ...)`` draws the named
record keys against the epoch into ``plots/<key>.png``.

Plots of the trained model (drawn at the end of a run, with the selected weights — the thesis' figures
4.8–4.10):

``latent(z, color = [E, Q20, Q30])``  the model output ``z`` (the latent vector) on the validation and test
                                     splits (``splits = [val, test]``), one panel per colour field in its
                                     physical unit → ``plots/latent.png``. d_z = 1: z against the field;
                                     2: a scatter; 3: a 3-D scatter; more: the first two principal axes.
``decode_line(z, rho, n = 12)``       densities decoded from n points on a line through the latent cloud
                                     (its first principal axis, 2nd to 98th percentile) →
                                     ``plots/decode_line.png``. The decoder is cut out of the model's fx
                                     graph: every node between the output ``z`` and the output ``rho``
                                     (:func:`subgraph`), so it needs a bkdsl-compiled model.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def read_records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a kill: the rest of the file is still good
                log.warning("skipping a damaged line in %s", path)
    return out


def _curve(ax, recs: list[dict], key: str, label: str | None = None) -> bool:
    pts = [(r["epoch"], r[key]) for r in recs if key in r and r[key] is not None]
    if not pts:
        return False
    xs, ys = zip(*pts)
    ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, ms=3, label=label or key)
    return True


def draw(rundir: Path, extra: list[list[str]] | None = None, units: dict[str, str] | None = None) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = [r for r in read_records(rundir / "metrics.jsonl") if r.get("event") == "epoch"]
    pdir = rundir / "plots"
    pdir.mkdir(parents=True, exist_ok=True)
    written = []
    groups = [["train.loss", "val.loss"]] + list(extra or [])
    for keys in groups:
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        any_drawn = False
        for k in keys:
            any_drawn |= _curve(ax, recs, k)
        if any_drawn:
            vals = [r[k] for r in recs for k in keys if isinstance(r.get(k), (int, float))]
            if vals and min(vals) > 0:
                ax.set_yscale("log")
            ax.set_xlabel("epoch")
            u = (units or {}).get(keys[0].split(".", 1)[-1])
            ax.set_ylabel(("loss" if keys[0].endswith("loss") else keys[0]) + (f" [{u}]" if u else ""))
            ax.grid(alpha=0.3)
            ax.legend()
            name = "loss" if keys == ["train.loss", "val.loss"] else "_".join(k.replace(".", "_") for k in keys)
            p = pdir / f"{name}.png"
            fig.tight_layout()
            fig.savefig(p)
            written.append(p)
        plt.close(fig)
    return written


# ------------------------------------------------------------------------------------ model plots
def subgraph(gm, src: str, dst: str):
    """The part of a compiled model (an fx ``GraphModule`` returning a dict) that maps its output ``src`` to
    its output ``dst``: e.g. the density decoder z → ρ of an encoder–decoder model. Raises ValueError when
    ``dst`` depends on a model input other than through ``src``."""
    import torch.fx as fx

    g = gm.graph
    out_node = next(n for n in g.nodes if n.op == "output")
    outs = out_node.args[0]
    if not isinstance(outs, dict) or src not in outs or dst not in outs:
        raise ValueError(f"the model has no outputs `{src}` and `{dst}`")
    s_node, d_node = outs[src], outs[dst]
    need, stack = set(), [d_node]
    while stack:
        n = stack.pop()
        if n in need or n is s_node:
            continue
        need.add(n)
        stack.extend(n.all_input_nodes)
    new = fx.Graph()
    env = {s_node: new.placeholder(src)}
    for n in g.nodes:
        if n in need:
            if n.op == "placeholder":
                raise ValueError(f"`{dst}` depends on the input `{n.name}` other than through `{src}`")
            env[n] = new.node_copy(n, lambda a: env[a])
    new.output(env[d_node])
    return fx.GraphModule(gm, new)


def _collect(tr, splits: list[str], names: list[str]) -> tuple[dict, dict]:
    """Model outputs (physical units) and raw data fields over ``splits``, on the CPU."""
    import torch

    model = tr.raw_model
    was = model.training
    model.eval()
    outs, fields = {}, {}
    eb = tr.cfg.eval_batch or tr.cfg.batch
    with torch.no_grad():
        for sp in splits:
            data = tr.splits.get(sp) or {}
            if not data:
                continue
            n = next(iter(data.values())).shape[0]
            for s in range(0, n, eb):
                raw = tr._to_device({k: v[s:s + eb] for k, v in data.items()})
                out = tr._forward(model, tr.norm.apply(raw))
                for k, v in out.items():
                    outs.setdefault(k, []).append(tr.norm.invert(k, v).float().cpu())
                for k in names:
                    if k in raw:
                        fields.setdefault(k, []).append(raw[k].float().cpu())
    model.train(was)
    return ({k: torch.cat(v) for k, v in outs.items()}, {k: torch.cat(v) for k, v in fields.items()})


def _principal(z):
    import torch

    mu = z.mean(0)
    if z.shape[1] == 1:
        return mu, torch.ones(1), (z[:, 0] - mu[0])
    _, _, vh = torch.linalg.svd(z - mu, full_matrices=False)
    v = vh[0]
    return mu, v, (z - mu) @ v


def draw_model(rundir: Path, specs: list[dict], tr) -> list[Path]:
    """The ``latent(...)`` and ``decode_line(...)`` plots of a trained run (``tr``: the Trainer)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    pdir = Path(rundir) / "plots"
    pdir.mkdir(parents=True, exist_ok=True)
    info = tr.plan.data.dataset.info
    written = []
    for spec in specs:
        if spec["kind"] == "latent":
            colors = [c for c in spec["color"]]
            outs, fields = _collect(tr, spec.get("splits", ["val", "test"]), [c for c in colors if c])
            z = outs[spec["z"]].reshape(outs[spec["z"]].shape[0], -1)
            d = z.shape[1]
            fig = plt.figure(figsize=(5.2 * len(colors), 4.4), dpi=110)
            for i, cname in enumerate(colors):
                c = fields[cname].reshape(len(z), -1)[:, 0].numpy() if cname else None
                unit = (info.get(cname).unit if cname and info.get(cname) else None) or ""
                label = f"{cname} [{unit}]" if cname and unit else (cname or "")
                if d == 3:
                    ax = fig.add_subplot(1, len(colors), i + 1, projection="3d")
                    sc = ax.scatter(z[:, 0], z[:, 1], z[:, 2], c=c, s=3, cmap="viridis")
                    ax.set_xlabel("$z_1$"), ax.set_ylabel("$z_2$"), ax.set_zlabel("$z_3$")
                else:
                    ax = fig.add_subplot(1, len(colors), i + 1)
                    if d == 1:
                        sc = ax.scatter(z[:, 0], c if c is not None else torch.zeros(len(z)), c=c, s=3, cmap="viridis")
                        ax.set_xlabel("$z_1$"), ax.set_ylabel(label)
                    else:
                        zz = z[:, :2] if d == 2 else (z - z.mean(0)) @ torch.linalg.svd(z - z.mean(0), full_matrices=False)[2][:2].T
                        sc = ax.scatter(zz[:, 0], zz[:, 1], c=c, s=3, cmap="viridis")
                        ax.set_xlabel("$z_1$" if d == 2 else "PC 1"), ax.set_ylabel("$z_2$" if d == 2 else "PC 2")
                if c is not None:
                    fig.colorbar(sc, ax=ax, label=label, shrink=0.8)
                ax.set_title(f"latent d_z = {d}, colour {cname or '-'}")
            fig.tight_layout()
            p = pdir / "latent.png"
            fig.savefig(p)
            plt.close(fig)
            written.append(p)
        elif spec["kind"] == "decode_line":
            outs, _ = _collect(tr, ["val", "test"], [])
            z = outs[spec["z"]].reshape(outs[spec["z"]].shape[0], -1)
            mu, v, t = _principal(z)
            lo, hi = torch.quantile(t, 0.02), torch.quantile(t, 0.98)
            ts = torch.linspace(float(lo), float(hi), spec["n"])
            pts = mu[None, :] + ts[:, None] * v[None, :]
            dec = subgraph(tr.raw_model, spec["z"], spec["out"])
            was = tr.raw_model.training
            dec.eval()
            with torch.no_grad():
                y = dec(pts.to(tr.device))
            tr.raw_model.train(was)
            y = tr.norm.invert(spec["out"], y.float()).cpu()
            y = y.reshape(y.shape[0], *y.shape[-2:]) if y.ndim > 3 else y
            n = y.shape[0]
            cols = min(n, 4)
            rows = (n + cols - 1) // cols
            fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 1.9 * rows + 0.6), dpi=110, squeeze=False)
            vmin = min(0.0, float(y.min()))
            vmax = max(float(y.max()), vmin + 1e-12)
            unit = (info.get(spec["out"]).unit if info.get(spec["out"]) else None) or ""
            for i, ax in enumerate(axes.flat):
                ax.axis("off")
                if i >= n:
                    continue
                im = ax.imshow(y[i].numpy(), origin="lower", aspect="equal", cmap="magma", vmin=vmin, vmax=vmax)
                ax.set_title("(" + ", ".join(f"{float(a):.2f}" for a in pts[i]) + ")", fontsize=8)
            fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.7, label=f"{spec['out']} [{unit}]")
            fig.suptitle(f"{spec['out']} decoded along the first principal axis of {spec['z']} "
                         f"(rows: r, columns: z)", fontsize=9)
            p = pdir / "decode_line.png"
            fig.savefig(p)
            plt.close(fig)
            written.append(p)
    return written
