"""Wall time of whole ``bkdsl`` commands as a user runs them (process start and imports included).

Issue 14 targets on the 2-core machine: ``bkdsl --help`` under 0.3 s, ``bkdsl check specs/phase8.bk``
under 1.5 s. Each command runs ``--repeat`` times in a fresh process; we report min and median wall
time, the user+sys CPU of the median run, the machine's load average before and after (the machine is
shared: a load above the core count inflates wall times, which is why the CPU time is recorded too),
and which heavy modules each command imported (``python -X importtime`` output parsed). Writes JSON.
``check --probe`` of phase8 is timed beside ``check`` (it runs the confirming probes that ``check``
defers to compile/train: bkdsl/verify/claims.py), and ``check`` of the 10 000-line spec that
bench/check_scale.py generates (issue 13: under 2 s). ``--max-load L`` waits (up to ``--wait-s``) for
the 1-minute load average to fall under L first; the minimum of the repeats is the number to compare.
Each command runs once untimed first, so the per-user caches (Lark's tables, pint's unit definitions:
bkdsl/cachedir.py) are warm as on every start after the first. ``torch_free`` says whether the command
imported neither torch nor geoopt; ``scipy_modules`` counts the scipy modules it loaded (``import pint``
alone loads the package root and a few helpers, ``pint_scipy_modules``, probing for optional support).

    python bench/cli_time.py --max-load 2.5 --out bench/results/2026-12-03-cli_time.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from check_scale import generate  # noqa: E402  (the 10 000-line spec of issue 13)

COMMANDS = {
    "help": ["--help"],
    "fmt_check": ["fmt", "--check", "specs/tiny_regression.bk"],
    "check_phase8": ["check", "-q", "specs/phase8.bk"],
    "check_phase8_probe": ["check", "-q", "--probe", "specs/phase8.bk"],
    "check_tiny_regression": ["check", "-q", "specs/tiny_regression.bk"],
    "check_10k": ["check", "-q", "{scale_spec}"],
}
TARGETS_S = {"help": 0.3, "check_phase8": 1.5, "check_10k": 2.0}
HEAVY = ("torch", "scipy", "geoopt", "pint", "lark", "numpy", "networkx", "pydantic")


def run_once(args: list[str]) -> tuple[float, float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "bkdsl", *args], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, r.returncode


def imported(args: list[str]) -> set[str]:
    """The modules a command imports (``python -X importtime``)."""
    r = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True)
    return {line.split("|")[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}


def heavy_imports(mods: set[str]) -> list[str]:
    return sorted(h for h in HEAVY if h in mods)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", default=None, help="JSON path (default: print only)")
    ap.add_argument("--max-load", type=float, default=None, help="wait for the 1-min load average to fall under this")
    ap.add_argument("--wait-s", type=float, default=600)
    args = ap.parse_args()
    t_wait = time.perf_counter()
    while args.max_load is not None and os.getloadavg()[0] >= args.max_load and time.perf_counter() - t_wait < args.wait_s:
        time.sleep(5)
    waited = round(time.perf_counter() - t_wait, 1) if args.max_load is not None else 0.0
    env_threads = os.environ.get("OMP_NUM_THREADS")
    load0 = os.getloadavg()
    results = {}
    pint_scipy = sorted(m for m in imported(["-c", "import pint"]) if m.split(".")[0] == "scipy")
    tmp = tempfile.TemporaryDirectory()
    scale_spec = Path(tmp.name) / "scale.bk"
    scale_spec.write_text(generate(10_000), encoding="utf-8")
    for name, cmd in COMMANDS.items():
        cmd = [a.replace("{scale_spec}", str(scale_spec)) for a in cmd]
        run_once(cmd)  # warm the per-user caches (not timed)
        runs = [run_once(cmd) for _ in range(args.repeat)]
        codes = {rc for _, _, rc in runs}
        if codes != {0}:
            print(f"{name}: exit codes {codes}", file=sys.stderr)
            return 1
        walls = sorted(w for w, _, _ in runs)
        med = statistics.median(walls)
        cpu_med = statistics.median(c for _, c, _ in runs)
        argv = ["bkdsl", *("<bench/check_scale.py 10k spec>" if a == str(scale_spec) else a for a in cmd)]
        results[name] = {"argv": argv, "wall_min_s": round(walls[0], 3), "wall_median_s": round(med, 3),
                         "cpu_min_s": round(min(c for _, c, _ in runs), 3),
                         "cpu_median_s": round(cpu_med, 3), "target_s": TARGETS_S.get(name),
                         "met_min": None if name not in TARGETS_S else walls[0] < TARGETS_S[name],
                         "met_median": None if name not in TARGETS_S else med < TARGETS_S[name]}
        mods = imported(["-m", "bkdsl", *cmd])
        results[name].update(heavy_imports=heavy_imports(mods), torch_free=not {"torch", "geoopt"} & mods,
                             scipy_modules=sum(m.split(".")[0] == "scipy" for m in mods))
        print(f"{name:24s} min {walls[0]:.3f} s  median {med:.3f} s  cpu {cpu_med:.3f} s  "
              f"target {TARGETS_S.get(name, '-')}  imports {','.join(results[name]['heavy_imports'])}")
    tmp.cleanup()
    out = {"bench": "cli_time", "python": platform.python_version(), "machine": platform.machine(),
           "cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in load0],
           "loadavg_after": [round(x, 2) for x in os.getloadavg()], "repeat": args.repeat,
           "waited_for_quiet_s": waited, "pint_scipy_modules": pint_scipy,
           "lines_check_10k": generate(10_000).count("\n"),
           "omp_num_threads": env_threads, "results": results}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
