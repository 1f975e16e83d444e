"""A/B timing of ``bkdsl check`` between this checkout and another (e.g. the commit before a change),
interleaved run by run, for a machine that is never quiet.

When the load average is far above the core count, wall times measure the other processes; what
stays comparable is the *same* measurement of two versions taken alternately, at the same moments.
Each round runs, for each version, in a fresh process: the 10 000-line spec of bench/check_scale.py
checked in-process after imports (CPU and wall of parse + resolve + verify), and the CLI ``bkdsl
check -q`` of ``specs/phase8.bk`` and of the generated spec (wall and user+sys CPU of the whole
process). Reported: min and median per version, the ratio new/old of the minima, the load average.

    python bench/check_ab.py --old /tmp/old-checkout --rounds 5 --out bench/results/2026-12-03-check_ab.json

``--old`` is a directory holding another version's ``bkdsl/`` (``git archive REV | tar -x -C DIR``);
it is put first on PYTHONPATH. ``--new`` defaults to this checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from check_scale import generate  # noqa: E402

IN_PROCESS = """
import json, sys, time
from bkdsl.api import check_source
text = open(sys.argv[1]).read()
check_source("const a = 1\\n", "warm.bk")
c, t = time.process_time(), time.perf_counter()
d = check_source(text, "scale.bk")
print(json.dumps({"cpu": time.process_time() - c, "wall": time.perf_counter() - t,
                  "errors": sum(x.is_error for x in d)}))
"""


def env_for(tree: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1")
    return env


def timed(cmd: list[str], env: dict, cwd: Path) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"{cmd} failed ({r.returncode}): {r.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), r.stdout


def summary(xs: list[float]) -> dict:
    return {"min": round(min(xs), 3), "median": round(statistics.median(xs), 3), "runs": [round(x, 3) for x in xs]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", required=True, help="directory with the other version's bkdsl/")
    ap.add_argument("--new", default=str(ROOT))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--lines", type=int, default=10_000)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    trees = {"old": Path(args.old).resolve(), "new": Path(args.new).resolve()}
    for name, tree in trees.items():
        if not (tree / "bkdsl" / "__init__.py").is_file():
            raise SystemExit(f"--{name} {tree} holds no bkdsl/")
    load0 = os.getloadavg()
    res: dict[str, dict[str, list[float]]] = {k: {} for k in trees}
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "scale.bk"
        spec.write_text(generate(args.lines))
        for _ in range(args.rounds):
            for name, tree in trees.items():
                env, r = env_for(tree), res[name]
                _, _, out = timed([sys.executable, "-c", IN_PROCESS, str(spec)], env, tree)
                m = json.loads(out)
                if m["errors"]:
                    raise SystemExit(f"{name}: the generated spec has errors")
                r.setdefault("in_process_cpu_s", []).append(m["cpu"])
                r.setdefault("in_process_wall_s", []).append(m["wall"])
                for label, target in (("cli_phase8", tree / "specs" / "phase8.bk"), ("cli_10k", spec)):
                    wall, cpu, _ = timed([sys.executable, "-m", "bkdsl", "check", "-q", str(target)], env, tree)
                    r.setdefault(f"{label}_wall_s", []).append(wall)
                    r.setdefault(f"{label}_cpu_s", []).append(cpu)
    out = {"bench": "check_ab", "old": str(trees["old"]), "new": str(trees["new"]), "rounds": args.rounds,
           "lines": args.lines, "cpus": os.cpu_count(), "python": sys.version.split()[0],
           "loadavg_before": [round(x, 2) for x in load0], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
           "results": {k: {m: summary(v) for m, v in r.items()} for k, r in res.items()},
           "new_over_old_min": {m: round(min(res["new"][m]) / min(res["old"][m]), 3) for m in res["new"]}}
    print(json.dumps(out, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
