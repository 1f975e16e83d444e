"""``--set dotted.key=value``: command-line overrides of data and train blocks.

The value is parsed as a bk expression and spliced into the AST *before* resolution, so it is type-
and unit-checked exactly like the spec itself (a wrong unit in ``--set data.step=3 MeV`` is the same
E0203/E0201 as in the file, pointing at the override). Keys: ``train.KEY`` / ``train.NAME.KEY`` (an
entry of a train block) and ``data.KEY`` / ``data.NAME.KEY`` (a keyword argument of a data source).
"""

from __future__ import annotations

from bkdsl.diagnostics import BkErrors, Diagnostic, Span
from bkdsl.syntax import ast as A


def parse_value(text: str, file: str) -> tuple[A.Expr | None, list[Diagnostic]]:
    from bkdsl.syntax.parser import parse  # Lark loads when a value is parsed, not for `bkdsl --help`

    prefix = "const __override = "
    mod, diags = parse(prefix + text, file)
    if diags:
        for d in diags:  # columns relative to the value text
            if d.span is not None:
                d.span = Span(file, 1, max(1, d.span.col - len(prefix)), 1, max(1, d.span.end_col - len(prefix)))
        return None, diags
    if len(mod.stmts) != 1:
        return None, [Diagnostic("E0206", f"`{text}` is not a single value", Span(file, 1, 1, 1, len(text) + 1))]
    expr = mod.stmts[0].value
    _shift(expr, len(prefix))
    return expr, []


def _shift(node, n: int) -> None:
    sp = getattr(node, "span", None)
    if isinstance(sp, Span):
        node.span = Span(sp.file, 1, max(1, sp.col - n), 1, max(1, sp.end_col - n))
    if hasattr(node, "__dataclass_fields__"):
        for f in node.__dataclass_fields__:
            if f == "span":
                continue
            v = getattr(node, f)
            for x in v if isinstance(v, list) else [v]:
                if hasattr(x, "__dataclass_fields__"):
                    _shift(x, n)


def apply_overrides(module: A.Module, overrides: dict[str, str], sources: dict[str, str]) -> list[Diagnostic]:
    diags: list[Diagnostic] = []
    trains = [s for s in module.stmts if isinstance(s, A.Train)]
    datas = [s for s in module.stmts if isinstance(s, A.Data)]
    for key, text in overrides.items():
        file = f"<--set {key}>"
        sources[file] = text
        whole = Span(file, 1, 1, 1, len(text) + 1)
        parts = key.split(".")
        if len(parts) not in (2, 3) or parts[0] not in ("train", "data"):
            diags.append(Diagnostic("E0206", f"cannot override `{key}`", whole,
                                    help="keys are train.KEY, train.NAME.KEY, data.KEY or data.NAME.KEY"))
            continue
        value, pd = parse_value(text, file)
        if pd:
            diags.extend(pd)
            continue
        pool = trains if parts[0] == "train" else datas
        if len(parts) == 3:
            target = next((s for s in pool if s.name == parts[1]), None)
        else:
            target = pool[0] if len(pool) == 1 else None
        if target is None:
            names = ", ".join(s.name for s in pool) or "none"
            diags.append(Diagnostic("E0206", f"`{key}`: no such {parts[0]} block (have: {names})", whole,
                                    help=f"with several {parts[0]} blocks write {parts[0]}.NAME.{parts[-1]}"))
            continue
        k = parts[-1]
        if isinstance(target, A.Train):
            _upsert(target.entries, lambda e: e.key, k, value, lambda: A.TrainEntry(k, value, whole))
        elif isinstance(target.value, A.Call):
            _upsert(target.value.kwargs, lambda kw: kw.name, k, value, lambda: A.Kwarg(k, value, whole))
        else:
            diags.append(Diagnostic("E0206", f"`{key}`: data `{target.name}` is not a call", whole))
    return diags


def _upsert(items: list, name_of, k: str, value, make) -> None:
    """Replace the value of the item named ``k``, or append ``make()`` when there is none."""
    for it in items:
        if name_of(it) == k:
            it.value = value
            return
    items.append(make())


def parse_set_args(items: list[str]) -> tuple[dict[str, str], list[Diagnostic]]:
    """``["train.epochs=2", ...]`` → ``{"train.epochs": "2"}``; E0206 for a missing ``=``, an empty key or
    value, or a key that names no block (the one parser of ``--set`` for every command)."""
    out: dict[str, str] = {}
    diags = []
    for it in items:
        k, eq, v = it.partition("=")
        k, v = k.strip(), v.strip()
        where = Span("<--set>", 1, 1, 1, len(it) + 1)
        if not eq or not k or not v:
            diags.append(Diagnostic("E0206", f"`--set {it}`: expected KEY=VALUE", where,
                                    help="e.g. --set train.epochs=2 or --set data.samples=64"))
        elif "." not in k:
            diags.append(Diagnostic("E0206", f"`--set {it}`: name the block, e.g. `train.{k}`", where,
                                    help="keys are dotted: train.epochs, data.samples, data.split"))
        else:
            out[k] = v
    return out, diags


def overrides_of(items: list[str]) -> dict[str, str]:
    """:func:`parse_set_args`, raising :class:`BkErrors` with its diagnostics."""
    out, diags = parse_set_args(items)
    if diags:
        raise BkErrors(diags)
    return out
