"""The adversarial suite for the front end: every input ends in diagnostics or success, never in an
uncaught exception or a hang (issue #13, "Must show").

Each case is one bk text made by one of these generators (drawn with the weights in
:data:`Fuzzer.WEIGHTS`, all seeded):

* ``token`` — grammar-aware mutations of a shipped spec or stdlib file: the text is split into the
  lexer's tokens (names, numbers, strings, punctuation, newlines) and 1–4 edits are applied — swap two
  tokens, delete a run, duplicate a run, replace a token by one of the grammar's keywords/operators,
  replace a number by an extreme one;
* ``splice`` — a run of lines of one shipped file spliced into another;
* ``unicode`` — random code points (controls, separators such as U+2028 and form feed, surrogates
  escaped, combining marks, RTL) inserted into a shipped file, or a text of them alone;
* ``nesting`` — deep parentheses, brackets, calls, unary minus and long sums (below and above the
  documented nesting limit);
* ``numbers`` — huge and tiny literals, ``a^b^c`` towers, huge dimensions, ``repeat`` counts;
* ``long`` — long inputs: very long lines, names, strings, many statements.

Per case: ``bkdsl.check_source`` (parse → resolve → verify), or with ``--full-every`` the front end
alone (parse → resolve, see :func:`front_end`), under a watchdog of 5 s of the process's CPU time
(``ITIMER_PROF``/``SIGPROF``, same process: CPU time, so that a loaded machine does not turn slow
cases into false hangs; each case's wall time is recorded too); every diagnostic is rendered; when the text parses, the formatter's round trip is checked
(``parse(fmt(x))`` succeeds and ``fmt`` is idempotent). Any exception (other than the watchdog's) is a
*traceback*; a case that runs past the watchdog is a *hang*; a round trip that fails is a *fmt
failure*. The JSON lists counts per generator and the first failures with their texts.

    python bench/fuzz.py --cases 100000 --out bench/results/2026-12-03-fuzz.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import random
import re
import signal
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HANG_S = 5.0
TOKEN_RE = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|\n|[A-Za-z_][A-Za-z_0-9]*|'
                      r'(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?i?|\.\.\.|[ \t]+|.', re.S)
KEYWORDS = ["import", "from", "as", "const", "manifold", "propagator", "binding", "integrator", "loss",
            "hamiltonian", "block", "model", "input", "param", "output", "data", "train", "on", "in", "int",
            "float", "complex", "bool", "true", "false", "repeat"]
PUNCT = ["(", ")", "[", "]", "{", "}", "=", ":", ",", ".", "...", ";", "+", "-", "*", "/", "^", "\n", "#x",
         '"s"', '"../../../etc/passwd"', '"/dev/zero"']
NUMBERS = ["0", "-0", "1", "-1", "2", "1e9", "1000000000", "1e308", "1e309", "1e-320", "10^10^10", "2^64",
           "99999999999999999999999999", "0.0", "3.5", "1e-3", "0.1i", "-0.1i", "1e400i", "16777217",
           "4" * 300, "1" * 5000]
UNITS = ["fm", "MeV", "fm^-3", "MeV*fm^1.5", "furlongz", "s", "m/s^2"]
SPECIALS = ["\x0c", "\u2028", "\u2029", "\x0b", "\x00", "\r", "\u200b", "\u202e", "\ufeff", "\x85", "\x1c",
            "\t", "é", "µ", "Å", "Ω", "𝔸", "\u0301", "\ud7ff", "\uffff"]


def sources() -> list[tuple[str, str]]:
    files = sorted((ROOT / "specs").glob("*.bk")) + sorted((ROOT / "stdlib").glob("*.bk"))
    return [(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8")) for p in files]


def _vocab(srcs: list[tuple[str, str]]) -> list[str]:
    names = set()
    for _, t in srcs:
        names.update(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", t))
    return sorted(names)


class Fuzzer:
    """Seeded case generator: ``Fuzzer(seed).case(i) -> (generator, text)``."""

    GENERATORS = ("token", "splice", "unicode", "nesting", "numbers", "long")
    WEIGHTS = (35, 15, 20, 10, 10, 10)

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.srcs = sources()
        self.vocab = _vocab(self.srcs)
        self.tokens = [TOKEN_RE.findall(t) for _, t in self.srcs]

    def case(self, i: int) -> tuple[str, str]:
        r = random.Random(f"{self.seed}:{i}")
        g = r.choices(self.GENERATORS, self.WEIGHTS)[0]
        return g, getattr(self, "gen_" + g)(r)

    # -- generators -------------------------------------------------------------------------------
    def _any_token(self, r: random.Random) -> str:
        k = r.random()
        if k < 0.35:
            return r.choice(KEYWORDS)
        if k < 0.6:
            return r.choice(PUNCT)
        if k < 0.75:
            return r.choice(NUMBERS)
        if k < 0.85:
            return r.choice(NUMBERS[:8]) + " " + r.choice(UNITS)
        return r.choice(self.vocab)

    def gen_token(self, r: random.Random) -> str:
        toks = list(r.choice(self.tokens))
        for _ in range(r.randint(1, 4)):
            if not toks:
                break
            i = r.randrange(len(toks))
            op = r.randrange(6)
            if op == 0:  # swap
                j = r.randrange(len(toks))
                toks[i], toks[j] = toks[j], toks[i]
            elif op == 1:  # delete a run
                del toks[i:i + r.randint(1, 8)]
            elif op == 2:  # duplicate a run
                toks[i:i] = toks[i:i + r.randint(1, 12)]
            elif op == 3:  # replace by a grammar token
                toks[i] = self._any_token(r)
            elif op == 4:  # insert a grammar token
                toks.insert(i, " " + self._any_token(r) + " ")
            else:  # replace a number
                nums = [k for k, t in enumerate(toks) if t[:1].isdigit()]
                if nums:
                    toks[r.choice(nums)] = r.choice(NUMBERS)
        return "".join(toks)

    def gen_splice(self, r: random.Random) -> str:
        a = r.choice(self.srcs)[1].split("\n")
        b = r.choice(self.srcs)[1].split("\n")
        i, j = r.randrange(len(a) + 1), r.randrange(len(b))
        return "\n".join(a[:i] + b[j:j + r.randint(1, 30)] + a[i + r.randint(0, 5):])

    def gen_unicode(self, r: random.Random) -> str:
        def ch() -> str:
            k = r.random()
            if k < 0.5:
                return r.choice(SPECIALS)
            cp = r.randrange(0x20, 0x30000)
            return chr(cp) if not 0xD800 <= cp <= 0xDFFF else "\ufffd"
        if r.random() < 0.3:
            return "".join(ch() for _ in range(r.randint(1, 200)))
        t = list(r.choice(self.srcs)[1])
        for _ in range(r.randint(1, 6)):
            t.insert(r.randrange(len(t) + 1), ch())
        return "".join(t)

    def gen_nesting(self, r: random.Random) -> str:
        n = r.choice([10, 50, 150, 199, 200, 201, 250, 1000, 3000, 10000])
        k = r.randrange(7)
        if k == 0:
            e = "(" * n + "1" + ")" * n
        elif k == 1:
            e = " + ".join(["1"] * n)
        elif k == 2:
            e = "[" * n + "1" + "]" * n
        elif k == 3:
            e = "-" * n + "1"
        elif k == 4:
            e = "f(" * n + "1" + ")" * n
        elif k == 5:
            e = "^".join(["2"] * min(n, 50))
        else:
            return ("model m {\n  input x : [B, 4]\n  output " + "relu(" * n + "x" + ")" * n + "\n}\n")
        if r.random() < 0.2:  # unbalanced
            e = e[: r.randrange(len(e) + 1)]
        return f"const a = {e}\n"

    def gen_numbers(self, r: random.Random) -> str:
        a, b = r.choice(NUMBERS), r.choice(NUMBERS)
        k = r.randrange(6)
        if k == 0:
            return f"const a = {a}^{b}^{r.choice(NUMBERS)}\n"
        if k == 1:
            return f"model m {{\n  input x : [B, {a}]\n  output linear(x, {b})\n}}\n"
        if k == 2:
            return ("block f(d: int = 4) {\n  input x : [B, d]\n  output linear(x, d)\n}\n"
                    f"model m {{\n  input x : [B, 4]\n  output repeat(f(), {a})(x)\n}}\n")
        if k == 3:
            return f"const a = [{a}, {b}] fm {r.choice('+-*/^')} [{b}] {r.choice(UNITS)}\n"
        if k == 4:
            return f"manifold m = poincare(c = {a})\nintegrator i = leapfrog(dt = {b}, steps = {a})\n"
        return f"const a = {a} {r.choice(UNITS)} {r.choice('+-*/^')} {b} {r.choice(UNITS)}\n"

    def gen_long(self, r: random.Random) -> str:
        k = r.randrange(5)
        n = r.choice([300, 1000, 5000, 20000])
        if k == 3:
            n = r.choice([300, 1000, 5000])
        if k == 0:
            return f"const {'a' * n} = 1\n"
        if k == 1:
            return f'import "{"a" * r.choice([255, 256, 300, 5000])}.bk" as x\n'
        if k == 2:
            return f'const s = "{"x" * n * 5}"\n'
        if k == 3:
            return "".join(f"const c{i} = {i} fm\n" for i in range(n // 10))
        return "const a = " + "1 * " * (n // 50) + "1\n" + "# " + "z" * n + "\n"


# -- running a case -----------------------------------------------------------------------------
class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def front_end(text: str, file: str = "fuzz.bk"):
    """parse → resolve (imports, names, constants, units, parameters, block elaboration and type
    inference): ``bkdsl.check_source`` without the verifier's numerical probes. Returns
    ``(module or None, diagnostics)``; a BkError escaping resolution becomes a diagnostic, as in
    ``check_source``."""
    from bkdsl.diagnostics import BkError
    from bkdsl.semantics.resolve import Loader, resolve
    from bkdsl.syntax.parser import parse

    mod, diags = parse(text, file)
    if mod is None:
        return None, diags
    loader = Loader()
    try:
        _, rdiags = resolve(mod, loader)
    except BkError as e:
        return mod, loader.diagnostics + [e.diagnostic]
    return mod, loader.diagnostics + rdiags


def run_case(text: str, full: bool = True, fmt: bool = True) -> str:
    """'ok' | 'traceback: …' | 'hang' | 'fmt: …' for one text (watchdog: HANG_S seconds).
    ``full``: ``check_source`` (with verification and its probes), else :func:`front_end`;
    ``fmt``: also check the formatter's round trip when the text parses."""
    from bkdsl.api import check_source
    from bkdsl.diagnostics import Diagnostic
    from bkdsl.syntax.fmt import format_module
    from bkdsl.syntax.parser import parse

    old = signal.signal(signal.SIGPROF, _alarm)
    signal.setitimer(signal.ITIMER_PROF, HANG_S)
    try:
        if full:
            diags = check_source(text, "fuzz.bk")
            mod = parse(text, "fuzz.bk")[0] if fmt else None
        else:
            mod, diags = front_end(text)
        if not isinstance(diags, list) or not all(isinstance(d, Diagnostic) for d in diags):
            return "traceback: check_source returned something other than diagnostics"
        for d in diags:
            d.render(text)
        if mod is not None and fmt:
            once = format_module(mod)
            mod2, pd2 = parse(once, "fuzz.bk")
            if mod2 is None:
                return f"fmt: the formatted text does not parse: {pd2[0].message if pd2 else '?'}"
            if format_module(mod2) != once:
                return "fmt: not idempotent"
        return "ok"
    except Hang:
        return "hang"
    except RecursionError:
        return "traceback: RecursionError"
    except Exception as e:  # every other exception is a failure of the front end
        tb = traceback.extract_tb(e.__traceback__)
        where = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"
        return f"traceback: {type(e).__name__} at {where}: {str(e)[:200]}"
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, old)


def fuzz(cases: int, seed: int = 0, start: int = 0, progress: bool = False, full_every: int = 1,
         fmt_every: int = 1, checkpoint=None) -> dict:
    """Run cases ``start … start+cases-1``; every ``full_every``-th one through ``check_source`` (with the
    verifier), the others through :func:`front_end`. ``checkpoint(partial_result)`` is called every
    1000 cases (the long run writes its JSON as it goes)."""
    f = Fuzzer(seed)
    counts = {g: {"cases": 0, "tracebacks": 0, "hangs": 0, "fmt_failures": 0} for g in Fuzzer.GENERATORS}
    failures: list[dict] = []
    slowest = (0.0, None)
    over_5s_wall = 0
    t0 = time.perf_counter()
    for i in range(start, start + cases):
        g, text = f.case(i)
        t = time.perf_counter()
        res = run_case(text, full=full_every > 0 and i % full_every == 0, fmt=fmt_every > 0 and i % fmt_every == 0)
        el = time.perf_counter() - t
        over_5s_wall += el > HANG_S
        if el > slowest[0]:
            slowest = (el, i)
        c = counts[g]
        c["cases"] += 1
        if res != "ok":
            key = "hangs" if res == "hang" else "fmt_failures" if res.startswith("fmt") else "tracebacks"
            c[key] += 1
            if len(failures) < 50:
                failures.append({"case": i, "generator": g, "result": res, "text": text[:2000]})
        if checkpoint is not None and (i - start + 1) % 1000 == 0:
            checkpoint(_summary(counts, failures, slowest, seed, start, t0, full_every, fmt_every, over_5s_wall))
        if progress and (i - start + 1) % 1000 == 0:
            done = i - start + 1
            tot = {k: sum(c[k] for c in counts.values()) for k in ("tracebacks", "hangs", "fmt_failures")}
            print(f"{done}/{cases} {time.perf_counter() - t0:.0f}s {tot}", file=sys.stderr, flush=True)
    return _summary(counts, failures, slowest, seed, start, t0, full_every, fmt_every, over_5s_wall)


def _summary(counts, failures, slowest, seed, start, t0, full_every, fmt_every, over_5s_wall) -> dict:
    total = {k: sum(c[k] for c in counts.values()) for k in ("cases", "tracebacks", "hangs", "fmt_failures")}
    return {**total, "seed": seed, "first_case": start, "hang_limit_s": HANG_S,
            "full_check_every": full_every, "fmt_round_trip_every": fmt_every, "wall_s": round(time.perf_counter() - t0, 1),
            "slowest_case_wall_s": round(slowest[0], 3), "slowest_case": slowest[1],
            "cases_over_5s_wall": over_5s_wall, "load_average": list(__import__("os").getloadavg()), "by_generator": counts,
            "failures": failures}


def warm_up(full: bool = False) -> None:
    """Import what the pipeline imports lazily (outside the watchdog): every shipped file through the
    front end (``full``: through ``check_source``, probes included)."""
    from bkdsl.api import check_source

    check_source("model m {\n  input x : [B, 4]\n  output relu(x)\n}\n", "warm.bk")
    for name, text in sources():
        check_source(text, name) if full else front_end(text, name)


def merge(paths: list[str], out: str | None) -> dict:
    """Sum shard results (cases, failures, per-generator counts); shards must not overlap."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    keys = ("cases", "tracebacks", "hangs", "fmt_failures")
    res = {k: v for k, v in parts[0].items() if k not in keys + ("by_generator", "failures", "first_case", "partial")}
    res.update({k: sum(p[k] for p in parts) for k in keys})
    res["shards"] = [{"first_case": p["first_case"], "cases": p["cases"], "wall_s": p["wall_s"],
                      "partial": p.get("partial", False)} for p in parts]
    res["wall_s"] = round(max(p["wall_s"] for p in parts), 1)
    res["slowest_case_wall_s"] = max(p["slowest_case_wall_s"] for p in parts)
    res["cases_over_5s_wall"] = sum(p.get("cases_over_5s_wall", 0) for p in parts)
    res["by_generator"] = {g: {k: sum(p["by_generator"][g][k] for p in parts) for k in parts[0]["by_generator"][g]}
                           for g in parts[0]["by_generator"]}
    res["failures"] = [f for p in parts for f in p["failures"]][:50]
    if out:
        Path(out).write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: res[k] for k in keys}))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", type=int, default=0, help="first case index (to resume or shard)")
    ap.add_argument("--out", default=None, help="JSON path (default: print)")
    ap.add_argument("--full-every", type=int, default=1,
                    help="run every k-th case through check_source with the verifier's probes (others: "
                         "parse + resolve); 1 = all, 0 = none")
    ap.add_argument("--fmt-every", type=int, default=1, help="check the fmt round trip on every k-th case")
    ap.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                    help="merge the JSON of shards (--start/--cases) into --out instead of running")
    args = ap.parse_args()
    if args.merge:
        merge(args.merge, args.out)
        return
    import lark
    import torch

    import bkdsl
    import bkdsl.api  # noqa: F401  -- imports are not part of the measurement

    warm_up(full=args.full_every > 0)
    head = {"date": dt.date.today().isoformat(), "machine": platform.machine(), "python": platform.python_version(),
            "torch": torch.__version__, "lark": lark.__version__, "target_cases": args.cases}

    def checkpoint(partial: dict) -> None:
        if args.out:
            Path(args.out).write_text(json.dumps({**head, "partial": True, **partial}, indent=1,
                                                 ensure_ascii=False) + "\n", encoding="utf-8")

    res = fuzz(args.cases, args.seed, args.start, progress=True, full_every=args.full_every,
               fmt_every=args.fmt_every, checkpoint=checkpoint)
    res = {"date": dt.date.today().isoformat(), "machine": platform.machine(), "python": platform.python_version(),
           "torch": torch.__version__, "lark": lark.__version__, "bkdsl": getattr(bkdsl, "__version__", "?"), **res}
    text = json.dumps(res, indent=1, ensure_ascii=False)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(json.dumps({k: res[k] for k in ("cases", "tracebacks", "hangs", "fmt_failures", "wall_s")}))


if __name__ == "__main__":
    main()
