"""Diagnostics: how every user error reaches a user.

A :class:`Diagnostic` is a value, not an exception: each compiler stage returns a list of them.
Rendering follows rustc / Elm::

    specs/bad.bk:12:9: error[E0301]: `rk4` is not symplectic
       |
    12 | integrator rk = rk4(dt = 0.1, steps = 10) : symplectic
       |                 ^^^^^^^^^^^^^^^^^^^^^^^^^ max |JᵀΩJ − Ω| = 2.1e-3 at the probe
       = help: use leapfrog, verlet, yoshida4 or implicit_midpoint, or drop the claim

Where code deep inside a component or the runner finds a user error, it raises :class:`BkError`
carrying the same fields; the CLI turns it into a diagnostic (never a traceback). The stable codes
and their meaning live in :data:`CODES` and ``docs/errors.md`` (a test keeps the two in step).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Iterable


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True)
class Span:
    """A region of a source file: 1-based line and column of the start and of the end (exclusive)."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    @staticmethod
    def unknown(file: str = "<unknown>") -> "Span":
        return Span(file, 1, 1, 1, 1)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


# The stable codes. Grouped by stage: E00xx syntax and files, E01xx names and imports, E02xx values,
# parameters and units, E03xx properties (verification), E04xx shapes and manifolds, E05xx dataflow,
# E06xx data and training, E07xx physics, E08xx kernels and devices. X0001 is an internal error.
CODES: dict[str, str] = {
    "E0001": "syntax error: the text does not match the bk grammar",
    "E0002": "file not found or unreadable",
    "E0003": "duplicate definition of a name",
    "E0004": "input beyond a documented front-end limit (nesting depth, literal size)",
    "E0005": "refusing to overwrite an existing file",
    "E0101": "unknown name",
    "E0102": "missing import: the module does not exist",
    "E0103": "import cycle",
    "E0104": "unknown component",
    "E0105": "wrong kind of declaration for this component",
    "E0106": "import outside the allowed directories (the spec's tree, the stdlib, --include)",
    "E0201": "bad parameter value for a component",
    "E0202": "unknown or malformed unit",
    "E0203": "unit mismatch",
    "E0204": "wrong number or kind of arguments",
    "E0205": "bad constant expression",
    "E0206": "bad command-line override (--set)",
    "E0207": "value beyond a documented limit (power, repeat count, dimension size)",
    "E0301": "claimed property could not be established",
    "E0302": "claimed property is refused by a numerical probe",
    "E0303": "unknown property",
    "E0304": "bad physical parameter in a propagator (e.g. Im z <= 0)",
    "E0305": "a claim's probe could not run (over the size budget, empty space, or it raised)",
    "E0306": "a claim that does not apply to this kind of declaration",
    "E0307": "a claim that cannot be checked (a block never used, with parameters without defaults)",
    "E0308": "bad claim argument (unknown axis, non-numeric bound)",
    "E0309": "next-token training of a model not established causal",
    "E0310": "a confirming probe contradicts a static proof: a component's declaration is wrong",
    "E0401": "shape mismatch",
    "E0402": "wrong manifold: an op was fed a value on a manifold it does not accept",
    "E0403": "dtype mismatch",
    "E0404": "unbound symbolic dimension",
    "E0501": "cyclic dataflow",
    "E0503": "block or model has no output",
    "E0601": "data field missing",
    "E0602": "data field has the wrong shape",
    "E0603": "data field holds NaN or Inf",
    "E0604": "data field unit mismatch",
    "E0605": "unreadable or unsupported data file",
    "E0606": "corrupted or truncated checkpoint",
    "E0607": "non-finite loss: training stopped",
    "E0608": "manifold parameters under a Euclidean optimizer",
    "E0609": "bad train block",
    "E0610": "nothing to resume",
    "E0611": "the run directory or a checkpoint could not be written",
    "E0612": "data that cannot be time-reversed (no declared phase-space layout or sequence structure)",
    "E0620": "a sweep that does not match: --resume of a different sweep, or OUT already holds one",
    "E0621": "runs that cannot be trained as one batched step (--sweep-mode batched)",
    "E0625": "a model without a grouped form under --sweep-mode grouped (an op that mixes the feature axis)",
    "E0624": "resume refused: the spec or its overrides changed since the run started",
    "E0622": "not a loadable run directory (no run record, spec or checkpoint)",
    "E0623": "export failed or its format is unavailable",
    "E0640": "AdS data the generator cannot make (too few boundary samples in the box)",
    "E0641": "AdS bulk metric not finite on the network's layer grid",
    "E0642": "AdS data and network on different layer grids or bulks (h compared at different η)",
    "E0701": "unknown nucleus",
    "E0702": "unknown energy-density functional",
    "E0703": "grid too small for the nucleus",
    "E0704": "solver did not converge",
    "E0705": "unphysical solution (collapsed density, radius or energy per nucleon out of bounds)",
    "E0706": "density solver and its settings do not fit (Kohn-Sham data: sho/rnd fields, no Coulomb)",
    "E0801": "device not available",
    "E0810": "CUDA-graph replay called with inputs the graphs were not captured for",
    "E0811": "CUDA-graph forward recorded again before its backward ran",
    "X0001": "internal compiler error (a bug in bkdsl; rerun with --debug for the traceback)",
}


@dataclass
class Diagnostic:
    code: str
    message: str
    span: Span | None = None
    label: str | None = None  # text under the caret
    help: str | None = None
    severity: Severity = Severity.ERROR
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"undocumented diagnostic code {self.code!r}")

    @property
    def is_error(self) -> bool:
        return self.severity == Severity.ERROR

    def to_json(self) -> dict:
        d = {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "help": self.help,
            "label": self.label,
            "notes": list(self.notes),
        }
        if self.span is not None:
            s = self.span
            d.update(file=s.file, line=s.line, col=s.col, end_line=s.end_line, end_col=s.end_col)
        return d

    def render(self, source: str | None = None) -> str:
        """Render as text; ``source`` is the file's text (read from disk when omitted)."""
        head = f"{self.severity.value}[{self.code}]: {self.message}"
        if self.span is None:
            lines = [head]
        else:
            lines = [f"{self.span}: {head}"]
            text = source if source is not None else _read_quietly(self.span.file)
            if text is not None:
                src_lines = source_lines(text)
                if 1 <= self.span.line <= len(src_lines):
                    line = printable(src_lines[self.span.line - 1])
                    num = str(self.span.line)
                    pad = " " * len(num)
                    end = self.span.end_col if self.span.end_line == self.span.line else len(line) + 1
                    width = max(1, end - self.span.col)
                    caret = " " * (self.span.col - 1) + "^" * width
                    if self.label:
                        caret += " " + self.label
                    lines += [f"{pad} |", f"{num} | {line}", f"{pad} | {caret}"]
        for n in self.notes:
            lines.append(f"   = note: {n}")
        if self.help:
            lines.append(f"   = help: {self.help}")
        return "\n".join(lines)


def source_lines(text: str) -> list[str]:
    """The lines of a source as the lexer counts them: split at ``\n`` only (a trailing ``\r`` is
    dropped). ``str.splitlines`` also splits at form feed, U+2028 and other separators that the
    grammar treats as ordinary characters, so its line numbers disagree with Lark's."""
    return [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]


def printable(line: str) -> str:
    """An excerpt line safe to print: each control or separator character (form feed, U+2028, ...)
    becomes U+FFFD, one column for one, so the caret stays under the right character."""
    return "".join(c if c.isprintable() or c == "\t" else "\ufffd" for c in line)


def suggest(name: str, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The candidate closest to ``name`` (difflib ratio ≥ ``cutoff``; case differences count as close),
    or None. Used for every "did you mean" of an unknown name."""
    cands = sorted({c for c in candidates if c and c != name})
    if not cands or len(name) > 200:
        return None
    lower = {c.lower(): c for c in cands}
    if name.lower() in lower:
        return lower[name.lower()]
    close = difflib.get_close_matches(name, cands, n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(name: str, candidates: Iterable[str], otherwise: str | None = None) -> str | None:
    """``"did you mean `x`?"`` for the closest candidate, else ``otherwise``."""
    s = suggest(name, candidates)
    return f"did you mean `{s}`?" if s is not None else otherwise


def pydantic_message(msg: str) -> str:
    """A pydantic error message without pydantic's prefixes ("Value error, ", "Assertion failed, ")."""
    for prefix in ("Value error, ", "Assertion failed, ", "Type error, "):
        if msg.startswith(prefix):
            return msg[len(prefix):]
    return msg


def _read_quietly(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


class BkError(Exception):
    """A user error raised from deep inside bkdsl (components, runner, physics).

    The CLI renders it exactly like a compiler diagnostic; it never surfaces as a traceback.
    """

    def __init__(self, code: str, message: str, *, help: str | None = None, span: Span | None = None,
                 label: str | None = None, notes: Iterable[str] = ()):
        super().__init__(message)
        self.diagnostic = Diagnostic(code, message, span=span, help=help, label=label, notes=list(notes))

    @property
    def code(self) -> str:
        return self.diagnostic.code


class BkErrors(Exception):
    """Several diagnostics at once (e.g. a spec that failed to compile, raised by the Python API)."""

    def __init__(self, diagnostics: list[Diagnostic], sources: dict[str, str] | None = None):
        self.diagnostics = diagnostics
        self.sources = sources or {}
        super().__init__("\n".join(d.render(self.sources.get(d.span.file) if d.span else None)
                                   for d in diagnostics))


def render_all(diags: Iterable[Diagnostic], sources: dict[str, str] | None = None, fmt: str = "text") -> str:
    diags = list(diags)
    sources = sources or {}
    if fmt == "json":
        return json.dumps([d.to_json() for d in diags], indent=2, ensure_ascii=False)
    out = [d.render(sources.get(d.span.file) if d.span else None) for d in diags]
    n_err = sum(d.is_error for d in diags)
    if n_err:
        out.append(f"{n_err} error{'s' if n_err != 1 else ''} found")
    return "\n\n".join(out[:-1]) + ("\n\n" if len(out) > 1 else "") + out[-1] if out else ""
