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
                                     (:func:`subgraph`), so it needs a bkdsl-compiled model. Axes r, z in
                                     fm when the data says its grid step (``meta["grid_step_fm"]``).

Conventions (figures a physicist would publish): every axis names its quantity and unit (``[1]`` for
dimensionless); colour maps are viridis (perceptually uniform, no ``jet``); validation curves show the raw
values faint under an exponential moving average (:func:`smooth`); a field that is non-negative in the
data (a density) is drawn clipped at 0 and the figure says how much of the model's output was negative —
the clipping is for display only, the model and the metrics see the raw output.
"""

from __future__ import annotations

import json
import logging
import math
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


#: exponential-moving-average weight of the smoothed curve (TensorBoard's default is 0.6); curves with fewer
#: than SMOOTH_MIN points are drawn raw only
SMOOTH_WEIGHT = 0.6
SMOOTH_MIN = 8
#: metric kinds reported in the unit of the field they compare when no unit is declared (mse: its square)
FIELD_UNIT_KINDS = ("mae", "rmse", "max_error", "parity_mae")


def smooth(ys: list[float], weight: float = SMOOTH_WEIGHT) -> list[float]:
    """Debiased exponential moving average: s_k = w s_{k-1} + (1 − w) y_k, divided by (1 − w^k) so the
    first points are not pulled toward 0 (TensorBoard's smoothing). Non-finite values pass through as NaN
    and do not enter the average."""
    out, acc, norm = [], 0.0, 0.0
    for y in ys:
        if y is None or not math.isfinite(y):
            out.append(float("nan"))
            continue
        acc = weight * acc + (1 - weight) * y
        norm = weight * norm + (1 - weight)
        out.append(acc / norm)
    return out


def metric_units(metrics: list, info: dict, declared: dict[str, str]) -> dict[str, str]:
    """Units of the reported metrics: the declared ones, else the compared field's unit for mae / rmse /
    max_error (its square for mse); metrics with neither have none."""
    units = dict(declared)
    for m in metrics:
        if m.name in units or not getattr(m, "field", None):
            continue
        fu = getattr(info.get(m.field), "unit", None)
        if fu and m.kind in FIELD_UNIT_KINDS:
            units[m.name] = fu
        elif fu and m.kind == "mse":
            units[m.name] = f"({fu})^2"
    return units


def _series(recs: list[dict], key: str, x: str) -> tuple[list, list]:
    """(x, y) of ``key`` over the records that carry it, in step order (epoch-end and every-N records)."""
    pts = sorted(((r.get(x, 0), r[key]) for r in recs if isinstance(r.get(key), (int, float))),
                 key=lambda t: t[0])
    seen, out = set(), []
    for px, py in pts:  # an epoch-end record and a step record at the same step: keep one
        if px not in seen:
            seen.add(px)
            out.append((px, py))
    return ([p[0] for p in out], [p[1] for p in out]) if out else ([], [])


def _curve(ax, recs: list[dict], key: str, x: str, color: str) -> int:
    xs, ys = _series(recs, key, x)
    if not xs:
        return 0
    if len(xs) >= SMOOTH_MIN:
        ax.plot(xs, ys, color=color, alpha=0.35, lw=0.8, label=f"{key} (raw)")
        ax.plot(xs, smooth(ys), color=color, lw=1.8, label=f"{key} (smoothed, EMA {SMOOTH_WEIGHT})")
    else:
        ax.plot(xs, ys, color=color, marker="o", ms=4, lw=1.2, label=key)
    return len(xs)


def _label(key: str, units: dict[str, str]) -> str:
    name = key.split(".", 1)[-1]
    if key.endswith("loss"):
        return "loss"
    u = units.get(name)
    return f"{name} [{u}]" if u else f"{name} [1]" if name in units else name


def curve_figure(recs: list[dict], keys: list[str], units: dict[str, str] | None = None):
    """The figure of one curve group (None when no record holds any of ``keys``): raw values faint, an
    EMA-smoothed line over them (from 8 points), against the optimizer step when the run wrote
    ``log_every`` / ``eval_every`` records (else the epoch); a log y axis when the values are positive
    and span more than a decade."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    units = units or {}
    recs = [r for r in recs if r.get("event") in ("epoch", "eval", "step")]
    x = "global_step" if any(r.get("event") in ("eval", "step") for r in recs) else "epoch"
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    counts = [_curve(ax, recs, k, x, colors[i % len(colors)]) for i, k in enumerate(keys)]
    if not any(counts):
        plt.close(fig)
        return None
    vals = [r[k] for r in recs for k in keys if isinstance(r.get(k), (int, float)) and math.isfinite(r[k])]
    if vals and min(vals) > 0 and max(vals) / min(vals) > 10:
        ax.set_yscale("log")
    ax.set_xlabel("optimizer step" if x == "global_step" else "epoch")
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    ax.set_ylabel(_label(keys[0], units))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if max(counts) < 4:
        ax.text(0.01, 0.01, f"{max(counts)} point{'s' * (max(counts) != 1)}: set train.eval_every / "
                "log_every (steps) for a denser curve", transform=ax.transAxes, fontsize=7, color="0.35")
    fig.tight_layout()
    return fig


def draw(rundir: Path, extra: list[list[str]] | None = None, units: dict[str, str] | None = None) -> list[Path]:
    """``plots/loss.png`` and one PNG per ``curve(...)`` group (:func:`curve_figure`)."""
    import matplotlib.pyplot as plt

    recs = read_records(rundir / "metrics.jsonl")
    pdir = rundir / "plots"
    pdir.mkdir(parents=True, exist_ok=True)
    written = []
    for keys in [["train.loss", "val.loss"]] + list(extra or []):
        fig = curve_figure(recs, keys, units)
        if fig is None:
            continue
        name = "loss" if keys == ["train.loss", "val.loss"] else "_".join(k.replace(".", "_") for k in keys)
        p = pdir / f"{name}.png"
        fig.savefig(p)
        plt.close(fig)
        written.append(p)
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


def _field_label(name: str | None, info: dict) -> str:
    if not name:
        return ""
    unit = getattr(info.get(name), "unit", None)
    return f"{name} [{unit or '1'}]"


def _tidy_ticks(ax, three_d: bool = False) -> None:
    """At most 4–5 ticks per axis at a readable size (a 3-D axis of 9 ticks printed "-4.0-3.5-3.0…")."""
    from matplotlib.ticker import MaxNLocator

    axes = [ax.xaxis, ax.yaxis] + ([ax.zaxis] if three_d else [])
    for a in axes:
        a.set_major_locator(MaxNLocator(nbins=4 if three_d else 5))
    ax.tick_params(labelsize=8, pad=1 if three_d else 3)


def _centred(z):
    """Latent coordinates whose spread is below 1e-2 of their magnitude (a collapsed latent) would get
    tick labels like "0.12648" with a "−1.268e−1" offset text that matplotlib's 3-D axes draw over the
    axis label: such a column is shifted by its mean and the label says so ("z_2 − 0.1268").
    Returns (z, [label per column])."""
    z = z.clone()
    labels = []
    for j in range(z.shape[1]):
        col = z[:, j]
        mid = float(col.mean())
        spread = float(col.max() - col.min())
        name = f"$z_{{{j + 1}}}$"
        if mid != 0 and spread < 1e-2 * abs(mid):
            z[:, j] = col - mid
            name += f" − ({mid:.4g})"
        labels.append(name)
    return z, labels


def _latent_figure(z, colors: list, fields: dict, info: dict, plt):
    """One panel per colour field: d_z = 1 the field against z_1, 2 a scatter, 3 a 3-D scatter, more the
    first two principal axes; colour maps viridis; tick labels thinned (see :func:`_tidy_ticks`)."""
    import torch

    d = z.shape[1]
    n = max(1, len(colors))
    zc, names = _centred(z) if d <= 3 else (z, [])
    fig = plt.figure(figsize=(5.4 * n, 4.6), dpi=110, layout="constrained")
    for i, cname in enumerate(colors or [None]):
        c = fields[cname].reshape(len(z), -1)[:, 0].numpy() if cname else None
        label = _field_label(cname, info)
        if d == 3:
            ax = fig.add_subplot(1, n, i + 1, projection="3d")
            sc = ax.scatter(zc[:, 0], zc[:, 1], zc[:, 2], c=c, s=4, cmap="viridis")
            ax.set_xlabel(names[0], labelpad=2), ax.set_ylabel(names[1], labelpad=2), ax.set_zlabel(names[2], labelpad=2)
            _tidy_ticks(ax, three_d=True)
        else:
            ax = fig.add_subplot(1, n, i + 1)
            if d == 1:
                sc = ax.scatter(zc[:, 0], c if c is not None else torch.zeros(len(z)), c=c, s=4, cmap="viridis")
                ax.set_xlabel(names[0]), ax.set_ylabel(label)
            else:
                zz = zc[:, :2] if d == 2 else (z - z.mean(0)) @ torch.linalg.svd(z - z.mean(0), full_matrices=False)[2][:2].T
                sc = ax.scatter(zz[:, 0], zz[:, 1], c=c, s=4, cmap="viridis")
                ax.set_xlabel(names[0] if d == 2 else "PC 1 of z"), ax.set_ylabel(names[1] if d == 2 else "PC 2 of z")
            _tidy_ticks(ax)
        if c is not None:
            cb = fig.colorbar(sc, ax=ax, label=label, shrink=0.8, pad=0.08 if d == 3 else 0.02)
            cb.ax.tick_params(labelsize=8)
        ax.set_title(f"latent z (d_z = {d}, dimensionless), colour {cname or '-'}", fontsize=9)
    return fig


def grid_extent(info_meta: dict, shape: tuple[int, int]) -> tuple[list[float] | None, str]:
    """imshow extent [z_min, z_max, r_min, r_max] in fm of an axial (r, z) grid, from the data's
    ``meta["grid_step_fm"]`` (cell centres r_i = (i + ½)h, z_j = (j − n_z/2 + ½)h): (extent, unit), or
    (None, "grid index") when the data does not say its step."""
    h = info_meta.get("grid_step_fm") if info_meta else None
    if not h:
        return None, "grid index"
    nr, nz = shape
    return [-nz * h / 2, nz * h / 2, 0.0, nr * h], "fm"


def _decode_figure(y, pts, out_name: str, info: dict, meta: dict, nonneg: bool, z_name: str, plt):
    """Densities decoded along a latent line: r/z axes in fm, viridis, one shared colour scale. A field
    that is non-negative in the data (a density) is shown clipped at 0 — the model's negative values are
    counted in the figure's note, not hidden."""
    import numpy as np

    n = y.shape[0]
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    extent, unit = grid_extent(meta, tuple(y.shape[-2:]))
    fig, axes = plt.subplots(rows, cols, figsize=(3.9 * cols, 1.75 * rows + 1.3), dpi=110, squeeze=False,
                             layout="constrained", sharex=True, sharey=True)
    arr = y.numpy()
    neg = arr < 0
    shown = np.clip(arr, 0.0, None) if nonneg else arr
    vmin = 0.0 if nonneg else min(0.0, float(arr.min()))
    vmax = max(float(shown.max()), vmin + 1e-12)
    im = None
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        im = ax.imshow(shown[i], origin="lower", aspect="equal", cmap="viridis", vmin=vmin, vmax=vmax,
                       extent=extent, interpolation="nearest")
        ax.set_title(f"{z_name} = (" + ", ".join(f"{float(a):.2f}" for a in pts[i]) + ")", fontsize=8)
        ax.tick_params(labelsize=7)
        if i % cols == 0:
            ax.set_ylabel(f"r [{unit}]", fontsize=8)
        if i // cols == rows - 1 or i + cols >= n:
            ax.set_xlabel(f"z [{unit}]", fontsize=8)
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label=_field_label(out_name, info))
    note = ""
    if nonneg and neg.any():
        u = getattr(info.get(out_name), "unit", None) or ""
        note = (f"; model output < 0 in {100 * neg.mean():.1f} % of pixels (min {float(arr.min()):.3g} {u}),"
                " shown clipped at 0")
    elif nonneg:
        note = "; no negative values"
    fig.suptitle(f"{out_name} decoded along the first principal axis of {z_name} (2nd–98th percentile){note}",
                 fontsize=9)
    return fig


def draw_model(rundir: Path, specs: list[dict], tr) -> list[Path]:
    """The ``latent(...)`` and ``decode_line(...)`` plots of a trained run (``tr``: the Trainer)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    pdir = Path(rundir) / "plots"
    pdir.mkdir(parents=True, exist_ok=True)
    ds = tr.plan.data.dataset
    info = ds.info
    written = []
    for spec in specs:
        if spec["kind"] == "latent":
            colors = [c for c in spec["color"]]
            outs, fields = _collect(tr, spec.get("splits", ["val", "test"]), [c for c in colors if c])
            z = outs[spec["z"]].reshape(outs[spec["z"]].shape[0], -1)
            fig = _latent_figure(z, colors, fields, info, plt)
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
            data = ds.fields.get(spec["out"])
            nonneg = data is not None and data.is_floating_point() and float(data.min()) >= 0
            fig = _decode_figure(y, pts, spec["out"], info, ds.meta, nonneg, spec["z"], plt)
            p = pdir / "decode_line.png"
            fig.savefig(p)
            plt.close(fig)
            written.append(p)
    return written
