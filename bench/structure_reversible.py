"""Reversible (integrate-backward) vs stored-trajectory backprop through 1000 leapfrog steps.

Measures, for a separable H = |p|²/2 + V_θ(q) with a neural V (MLP 2 → 64 → 64 → 1), batch 256,
phase space 2 × 4, float64:

* gradient agreement: max |g_rev − g_stored| / max |g_stored| over q₀, p₀ and every parameter of V;
* memory, two ways: (1) the bytes autograd keeps alive for backward after the forward pass (exact,
  via saved-tensor hooks); (2) the peak resident-set growth of a fresh process running forward +
  backward (``ru_maxrss`` after minus RSS before), which includes the transient buffers too.

    python bench/structure_reversible.py            # writes bench/results/<date>-structure_reversible.json
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import torch

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from structure_common import write  # noqa: E402

STEPS, BATCH, DIM, HIDDEN, DT = 1000, 256, 4, 64, 0.01


def setup():
    from bkdsl.nn.hamiltonians import MLPPotential, QuadraticKinetic, SeparableHamiltonian

    torch.manual_seed(0)
    H = SeparableHamiltonian(QuadraticKinetic(1.0), MLPPotential(DIM, HIDDEN, 2), dim=DIM).double()
    q0 = (0.5 * torch.randn(BATCH, DIM, dtype=torch.float64)).requires_grad_(True)
    p0 = (0.5 * torch.randn(BATCH, DIM, dtype=torch.float64)).requires_grad_(True)
    return H, q0, p0


def run(reversible: bool, steps: int = STEPS):
    from bkdsl.nn.integrators import Integrator

    H, q0, p0 = setup()
    q, p = Integrator(H, "leapfrog", DT, steps, reversible=reversible)(q0, p0)
    loss = (q ** 2).sum() + (p ** 2).sum()
    return torch.autograd.grad(loss, [q0, p0, *H.parameters()], allow_unused=True, materialize_grads=True)


def kept_bytes(reversible: bool) -> int:
    import gc
    import weakref

    from bkdsl.nn.integrators import Integrator

    class Box:
        __slots__ = ("t", "__weakref__")

    refs = []

    def pack(t):
        b = Box()
        b.t = t
        refs.append(weakref.ref(b))
        return b

    H, q0, p0 = setup()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda b: b.t):
        out = Integrator(H, "leapfrog", DT, STEPS, reversible=reversible)(q0, p0)
    gc.collect()
    seen, n = set(), 0
    for r in refs:
        b = r()
        if b is not None and id(b.t) not in seen:
            seen.add(id(b.t))
            n += b.t.numel() * b.t.element_size()
    del out
    return n


def rss_child(mode: str) -> None:
    """Run in a fresh process: print RSS growth (bytes) of forward + backward."""
    def status(key):  # VmRSS / VmHWM of this process, bytes. VmHWM (not ru_maxrss, which Linux
        # carries over from the parent across fork + exec) is this process's own high-water mark.
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError(key)

    setup()  # warm-up of imports and allocator
    before = status("VmRSS")
    t = time.perf_counter()
    run(mode == "reversible")
    dt = time.perf_counter() - t
    print(json.dumps({"rss_growth": status("VmHWM") - before, "seconds": dt}))


def main() -> None:
    rss = {}
    for m in ("stored", "reversible"):  # first, in fresh processes
        out = subprocess.run([sys.executable, __file__, "--child", m], capture_output=True, text=True, check=True)
        rss[m] = json.loads(out.stdout.strip().splitlines()[-1])
    g_st = run(False)
    g_rv = run(True)
    scale = max(float(g.abs().max()) for g in g_st)
    err = max(float((a - b).abs().max()) for a, b in zip(g_st, g_rv)) / scale
    kept = {m: kept_bytes(m == "reversible") for m in ("stored", "reversible")}
    res = {
        "steps": STEPS, "batch": BATCH, "phase_space": 2 * DIM, "potential": f"MLP {DIM}-{HIDDEN}-{HIDDEN}-1 tanh",
        "dtype": "float64", "method": "leapfrog", "dt": DT,
        "grad_max_rel_diff": err,
        "kept_for_backward_bytes": kept,
        "kept_ratio_stored_over_reversible": kept["stored"] / max(kept["reversible"], 1),
        "peak_rss_growth_bytes": {m: rss[m]["rss_growth"] for m in rss},
        "peak_rss_ratio_stored_over_reversible": rss["stored"]["rss_growth"] / max(rss["reversible"]["rss_growth"], 1),
        "seconds": {m: rss[m]["seconds"] for m in rss},
    }
    print(json.dumps(res, indent=2))
    write("structure_reversible", res)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        rss_child(sys.argv[2])
    else:
        main()
