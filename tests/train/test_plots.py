"""Figures a physicist would publish: readable ticks, r/z in fm, non-negative densities shown honestly,
no `jet`, smoothed validation curves, units on the axes."""

import itertools
import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from bkdsl.train import plots as P  # noqa: E402
from bkdsl.train.data import FieldInfo  # noqa: E402
from bkdsl.train.metrics import Metric  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_smooth_is_a_debiased_ema_that_skips_nan():
    assert P.smooth([2.0] * 5) == pytest.approx([2.0] * 5)          # debiased: no pull toward 0
    s = P.smooth([0.0, 1.0, float("nan"), 1.0])
    assert s[1] == pytest.approx(0.4 / 0.64) and math.isnan(s[2]) and s[3] > s[1]


def _recs(n_eval=20):
    recs = []
    for k in range(1, n_eval + 1):
        ev = "epoch" if k % 5 == 0 else "eval"
        recs.append({"event": ev, "epoch": (k - 1) // 5 + 1, "global_step": 10 * k, "val.mae_E": 1 + 0.3 * (-1) ** k,
                     "val.loss": 1.0 / k})
        if ev == "epoch":
            recs[-1]["train.loss"] = 1.2 / k
    return recs


def test_curve_figure_smooths_over_raw_against_steps_with_units():
    fig = P.curve_figure(_recs(), ["val.mae_E"], {"mae_E": "MeV"})
    ax = fig.axes[0]
    labels = [l.get_label() for l in ax.get_lines()]
    assert labels == ["val.mae_E (raw)", "val.mae_E (smoothed, EMA 0.6)"]
    raw, sm = (l.get_ydata() for l in ax.get_lines())
    assert len(raw) == 20 and max(sm) - min(sm[3:]) < max(raw) - min(raw)          # the smoothed line is calmer
    assert ax.get_xlabel() == "optimizer step" and ax.get_ylabel() == "mae_E [MeV]"
    plt.close(fig)


def test_curve_figure_with_few_points_says_how_to_get_more():
    fig = P.curve_figure([{"event": "epoch", "epoch": e, "global_step": e, "val.loss": 1.0 / e,
                           "train.loss": 1.0 / e} for e in (1, 2)], ["train.loss", "val.loss"])
    ax = fig.axes[0]
    assert ax.get_xlabel() == "epoch" and any("eval_every" in t.get_text() for t in ax.texts)
    plt.close(fig)


def test_metric_units_fall_back_to_the_field_unit():
    info = {"E": FieldInfo("E", unit="MeV"), "rho": FieldInfo("rho", unit="fm^-3")}
    ms = [Metric("mae", "E", "E"), Metric("mse", "rho", "rho"), Metric("rel_l2", "rho", "rho"),
          Metric("rmse", "E", "E", "keV", 1e3)]
    assert P.metric_units(ms, info, {"rmse_E": "keV"}) == {"mae_E": "MeV", "mse_rho": "(fm^-3)^2", "rmse_E": "keV"}


def _overlaps(fig, ax_list) -> list[tuple[str, str]]:
    """Pairs of visible tick labels whose rendered boxes overlap. 2-D axes: the labels' window extents.
    3-D axes (whose label extents are not kept after drawing): each tick projected onto the screen along
    its axis, neighbours overlapping when their anchors are closer than the labels' rendered size."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    bad = []
    for ax in ax_list:
        if hasattr(ax, "zaxis"):
            bad += _overlaps_3d(fig, ax, r)
            continue
        for axis in (ax.xaxis, ax.yaxis):
            labels = [t for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]
            boxes = [(t.get_text(), t.get_window_extent(r)) for t in labels]
            for (ta, a), (tb, b) in itertools.combinations(boxes, 2):
                if a.overlaps(b):
                    bad.append((ta, tb))
    return bad


def _overlaps_3d(fig, ax, r) -> list[tuple[str, str]]:
    from matplotlib.text import Text
    from mpl_toolkits.mplot3d import proj3d

    lims, M, bad = (ax.get_xlim3d(), ax.get_ylim3d(), ax.get_zlim3d()), ax.get_proj(), []
    for k, axis in enumerate((ax.xaxis, ax.yaxis, ax.zaxis)):
        lo, hi = sorted(lims[k])
        pts = []
        for loc, t in zip(axis.get_majorticklocs(), axis.get_ticklabels()):
            if not (lo - 1e-9 <= loc <= hi + 1e-9 and t.get_text()):
                continue
            p = [lims[0][0], lims[1][0], lims[2][0]]
            p[k] = loc
            X, Y = ax.transData.transform(proj3d.proj_transform(*p, M)[:2])
            probe = Text(0, 0, t.get_text(), fontproperties=t.get_fontproperties())
            probe.set_figure(fig)
            bb = probe.get_window_extent(r)
            pts.append((t.get_text(), X, Y, bb.width, bb.height))
        for (a, xa, ya, wa, ha), (b, xb, yb, wb, hb) in zip(pts, pts[1:]):
            if abs(xa - xb) < (wa + wb) / 2 and abs(ya - yb) < (ha + hb) / 2:
                bad.append((a, b))
    return bad


def test_the_overlap_check_catches_matplotlibs_default_3d_ticks():
    """The thesis-run latent plot (z_1 ∈ [−4, 0]: nine ticks printed as "−4.0−3.5−3.0…") — the check
    used below must see it."""
    z = -4.05 + 4.1 * torch.rand(300, 3, generator=torch.Generator().manual_seed(3))
    fig = plt.figure(figsize=(5.2 * 3, 4.4), dpi=110)                  # the old layout: three panels
    for i in range(3):
        ax = fig.add_subplot(1, 3, i + 1, projection="3d")
        fig.colorbar(ax.scatter(z[:, 0], z[:, 1], z[:, 2], c=z[:, 0], s=3), ax=ax, shrink=0.8)
    fig.tight_layout()
    assert ("−4.0", "−3.5") in _overlaps(fig, [fig.axes[0]])
    plt.close(fig)


@pytest.mark.parametrize("d", [1, 2, 3, 5])
def test_latent_tick_labels_do_not_overlap(d):
    g = torch.Generator().manual_seed(d)
    z = -4.05 + 4.1 * torch.rand(300, d, generator=g)                   # the range that overlapped (z_1 ∈ [−4, 0])
    z[:, 1:2] *= 0.05                                                     # and a narrow one (many decimals)
    fields = {"E": -1830 + 10 * torch.rand(300, 1, generator=g), "Q20": 6 * torch.randn(300, 1, generator=g),
              "Q30": torch.randn(300, 1, generator=g)}
    info = {"E": FieldInfo("E", unit="MeV"), "Q20": FieldInfo("Q20", unit="b"), "Q30": FieldInfo("Q30", unit="b^1.5")}
    fig = P._latent_figure(z, ["E", "Q20", "Q30"], fields, info, plt)
    panels = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    assert _overlaps(fig, fig.axes) == []
    cbars = [a.get_ylabel() for a in fig.axes if a.get_ylabel() in ("E [MeV]", "Q20 [b]", "Q30 [b^1.5]")]
    assert len(cbars) >= 3 and all(s.get_cmap().name == "viridis" for a in panels for s in a.collections)
    plt.close(fig)


def test_decoded_density_has_r_z_in_fm_and_is_clipped_with_a_note():
    y = torch.rand(6, 48, 128) * 0.17
    y[0, :2, :3] = -0.02                      # a model that undershoots near the axis
    pts = torch.randn(6, 2)
    info = {"rho": FieldInfo("rho", unit="fm^-3")}
    fig = P._decode_figure(y, pts, "rho", info, {"grid_step_fm": 0.4}, True, "z", plt)
    panels = [a for a in fig.axes if a.images]
    im = panels[0].images[0]
    assert float(im.get_array().min()) >= 0.0 and im.get_cmap().name == "viridis"
    assert list(im.get_extent()) == pytest.approx([-25.6, 25.6, 0.0, 19.2])      # z ∈ ±nz h/2, r ∈ [0, nr h]
    assert panels[0].get_ylabel() == "r [fm]" and panels[-1].get_xlabel() == "z [fm]"
    title = fig._suptitle.get_text()
    assert "shown clipped at 0" in title and "min -0.02 fm^-3" in title and "0.0 % of pixels" in title
    plt.close(fig)


def test_decoded_signed_field_is_not_clipped_and_unknown_grid_says_so():
    y = torch.randn(4, 8, 16)
    fig = P._decode_figure(y, torch.randn(4, 2), "v", {"v": FieldInfo("v", unit="MeV")}, {}, False, "z", plt)
    panels = [a for a in fig.axes if a.images]
    assert float(panels[0].images[0].get_array().min()) < 0 and panels[0].get_ylabel() == "r [grid index]"
    assert "clipped" not in fig._suptitle.get_text()
    plt.close(fig)


def test_no_jet_colour_map_anywhere():
    hits = []
    for p in list((ROOT / "bkdsl").rglob("*.py")) + list((ROOT / "docs").rglob("*.py")) + list((ROOT / "bench").rglob("*.py")):
        if re.search(r"""cmap\s*=\s*["'](jet|rainbow|hsv)["']""", p.read_text(encoding="utf-8", errors="replace")):
            hits.append(str(p.relative_to(ROOT)))
    assert hits == []


def test_a_collapsed_latent_is_centred_and_the_label_says_so():
    z = torch.tensor([[0.12640, 5.0], [0.12648, -1.0], [0.12656, 2.0]])
    zc, names = P._centred(z)
    assert names == ["$z_{1}$ − (0.1265)", "$z_{2}$"] and float(zc[:, 0].abs().max()) < 1e-4
    assert torch.equal(zc[:, 1], z[:, 1])
