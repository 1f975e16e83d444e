"""Parse + resolve/verify + lower time of a spec, after imports (issue 2: phase8 under 0.5 s).

Imports (torch, geoopt, lark, the component registry) are loaded first and not timed. Then:
``first`` — the first compile in the process (includes building the Lark parser tables);
``median`` — the median of repeated compiles. Each stage is timed separately. CPU only; writes
bench/results/<date>-compile_time.json.

    python bench/compile_time.py specs/phase8.bk
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("spec", nargs="?", default="specs/phase8.bk")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--out", default="bench/results")
    args = ap.parse_args()

    import torch  # noqa: F401  -- imports are not part of the measurement

    import bkdsl  # noqa: F401
    from bkdsl.registry import all_components
    from bkdsl.lower.fx import lower_block
    from bkdsl.semantics.resolve import Loader, resolve
    from bkdsl.syntax.parser import parse
    from bkdsl.verify import verify

    all_components()
    text = Path(args.spec).read_text()

    def once() -> dict[str, float]:
        t0 = time.perf_counter()
        mod, d = parse(text, args.spec)
        t1 = time.perf_counter()
        prog, d2 = resolve(mod, Loader())
        diags = verify(prog)
        t2 = time.perf_counter()
        assert not d and not d2 and not diags
        for ir in prog.models.values():
            lower_block(ir, {k: v.component for k, v in prog.decls.items() if v.kind == "manifold"})
        t3 = time.perf_counter()
        return {"parse": t1 - t0, "resolve_verify": t2 - t1, "lower": t3 - t2, "total": t3 - t0}

    first = once()
    runs = [once() for _ in range(args.repeat)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    res = {"spec": args.spec, "date": dt.date.today().isoformat(), "machine": platform.processor() or platform.machine(),
           "python": platform.python_version(), "torch": __import__("torch").__version__,
           "first_s": first, "median_s": med, "repeat": args.repeat, "target_s": 0.5}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{res['date']}-compile_time.json"
    path.write_text(json.dumps(res, indent=2) + "\n")
    print(f"{args.spec}: first {first['total'] * 1000:.0f} ms (parse {first['parse'] * 1000:.0f}, resolve+verify "
          f"{first['resolve_verify'] * 1000:.0f}, lower {first['lower'] * 1000:.0f}); median {med['total'] * 1000:.0f} ms"
          f" over {args.repeat}  → {path}")


if __name__ == "__main__":
    main()
