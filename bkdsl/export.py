"""``bkdsl export RUNDIR --format {safetensors,torch.export,onnx}``: a trained model usable without bkdsl.

Every format exports :func:`bkdsl.trained.load_run`'s model — inputs and outputs in physical units, the
normalisation folded in — and carries the same metadata (``bkdsl-export/1``): input and output names,
their declared shapes and units, the folded normalisation (per field: y = y'·scale + shift), the run's
spec hash, the weights' epoch and step, and bkdsl's version.

``safetensors``   ``model.safetensors``: the weights (``model.*``, the network's ``state_dict`` names) and the
                  normalisation buffers (``shift__<field>``, ``scale__<field>``); the metadata as JSON in the
                  header key ``bkdsl``. The architecture is not in the file — load the tensors into your own
                  module (or into ``bkdsl.trained.load_run``); the torch.fx code of the network is in the
                  header key ``graph`` for reference.
``torch.export``  ``model.pt2``: ``torch.export.save`` of the whole program (architecture and weights);
                  ``torch.export.load("model.pt2").module()(**inputs)`` needs torch only. The metadata is
                  the archive's extra file ``bkdsl.json``. The batch dimension is dynamic where the model
                  allows it (``dynamic_batch`` in the metadata says whether it is).
``onnx``          ``model.onnx`` through ``torch.onnx.export(dynamo=True)`` (needs the optional extra
                  ``bkdsl[export]``: onnx, onnxscript; onnxruntime to verify); the metadata in the model's
                  ``metadata_props`` (key ``bkdsl``).

Each export is checked before it is reported written: the exported artefact is run on fresh random
inputs (for torch.export and onnx: the exported program itself, at a second batch size when the batch is
dynamic) and compared with the model it came from; a difference above ``1e-4`` (relative to the output's
scale), a non-finite output or a failure is E0623 and the file is removed. An onnx export when
onnxruntime is absent is written but reported as unverified.
"""

from __future__ import annotations

import argparse
import json
import sys
from copy import deepcopy
from pathlib import Path

import torch

import bkdsl
from bkdsl.diagnostics import BkError
from bkdsl.trained import PhysicalModel, example_inputs, load_run

FORMATS = ("safetensors", "torch.export", "onnx")
SUFFIX = {"safetensors": "model.safetensors", "torch.export": "model.pt2", "onnx": "model.onnx"}
EXPORT_FORMAT = "bkdsl-export/1"
#: max |exported − eager| / (max |eager| + 1e-12) accepted when an export is checked (float32 rounding of
#: reordered kernels is ~1e-6; a wrong graph is O(1))
TOLERANCE = 1e-4


def metadata(model: PhysicalModel, fmt: str, dynamic_batch: bool | None = None) -> dict:
    types = getattr(model, "input_types", {})
    return {
        "format": EXPORT_FORMAT, "export": fmt, "bkdsl": bkdsl.__version__, "torch": torch.__version__,
        "inputs": {n: {"shape": [d if isinstance(d, int) else str(d) for d in (types[n].shape or ())] if n in types else None,
                       "dtype": types[n].dtype if n in types else None, "unit": model.units["inputs"].get(n)}
                   for n in model.inputs},
        "outputs": {n: {"unit": model.units["outputs"].get(n)} for n in model.outputs},
        "normalization": {"folded": True, "formula": "x' = (x - shift) / scale on inputs; y = y' * scale + shift "
                                                     "on outputs", "fields": model.normalization()},
        "dynamic_batch": dynamic_batch, "run": model.record,
    }


def _max_rel_err(ref: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> float:
    worst = 0.0
    for k, r in ref.items():
        g = got[k]
        if tuple(g.shape) != tuple(r.shape) or not torch.isfinite(g).all():
            return float("inf")
        scale = float(r.abs().max()) + 1e-12
        worst = max(worst, float((g.double() - r.double()).abs().max()) / scale)
    return worst


def _check(fmt: str, path: Path, ref_fn, run_fn, batches: list[int], model: PhysicalModel) -> float:
    """Run the artefact on fresh random inputs at each batch size; E0623 (and the file removed) when it
    differs from the model, is not finite, or fails."""
    worst = 0.0
    try:
        for b in batches:
            x = example_inputs(model, b)
            with torch.no_grad():
                ref = {k: v.detach() for k, v in ref_fn(x).items()}
            if not all(torch.isfinite(v).all() for v in ref.values()):
                raise BkError("E0623", f"the model's own outputs are not finite on random inputs; {fmt} export "
                                       "cannot be checked", help="check the run; export refuses what it cannot check")
            worst = max(worst, _max_rel_err(ref, run_fn(x)))
    except BkError:
        path.unlink(missing_ok=True)
        raise
    except Exception as e:
        path.unlink(missing_ok=True)
        raise BkError("E0623", f"the {fmt} export could not be run back: {type(e).__name__}: {str(e).splitlines()[0][:200]}",
                      help="report this model; the safetensors export keeps the weights") from None
    if not worst <= TOLERANCE:
        path.unlink(missing_ok=True)
        raise BkError("E0623", f"the {fmt} export differs from the model: max relative error {worst:.3g} "
                               f"(tolerance {TOLERANCE:g}); not written",
                      help="report this model; the safetensors export keeps the weights")
    return worst


def export_safetensors(model: PhysicalModel, path: Path) -> dict:
    from safetensors.torch import load_file, save_file

    from bkdsl.report import generated_code

    sd = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    meta = metadata(model, "safetensors")
    try:
        graph = generated_code(model.model)
    except Exception:  # the code listing is documentation only
        graph = ""
    save_file(sd, str(path), metadata={"bkdsl": json.dumps(meta), "graph": graph})
    back = load_file(str(path))

    # run back: a copy of the model whose every tensor (weights and normalisation) comes from the file
    copy = deepcopy(model)
    copy.load_state_dict(load_file(str(path)), strict=True)

    def run_back(x):
        with torch.no_grad():
            return copy(**x)

    meta["max_rel_err"] = _check("safetensors", path, lambda x: model(**x), run_back, [3], model)
    return meta


def named_signature(model: PhysicalModel) -> torch.nn.Module:
    """``model`` behind a ``forward(self, <input names>)`` with one parameter per input, which torch.export
    and torch.onnx need to name inputs and give them dynamic dimensions (``forward(**inputs)`` is one
    variadic argument to them). The names are bk identifiers; anything else is refused."""
    import keyword

    names = list(model.inputs)
    bad = [n for n in names if not n.isidentifier() or keyword.iskeyword(n) or n in ("self", "inner")]
    if bad:
        raise BkError("E0623", f"input names {bad} cannot name arguments of an exported program",
                      help="rename the model's inputs")
    src = (f"def forward(self, {', '.join(names)}):\n"
           f"    return self.inner(**{{{', '.join(f'{n!r}: {n}' for n in names)}}})\n")
    ns: dict = {}
    exec(compile(src, "<bkdsl.export.named_signature>", "exec"), ns)  # a template over checked identifiers
    cls = type("ExportedModel", (torch.nn.Module,), {"forward": ns["forward"], "__doc__": PhysicalModel.__doc__})
    wrapped = cls()
    wrapped.inner = model
    return wrapped.eval()


def _export_program(model: PhysicalModel):
    """torch.export of the model with a dynamic batch dimension, else a static one; (program, dynamic)."""
    from torch.export import Dim, export

    x = example_inputs(model, 3)
    batch = Dim("batch", min=1)
    dyn = {n: ({0: batch} if t.ndim >= 1 else None) for n, t in x.items()}
    model = named_signature(model)
    try:
        return export(model, (), kwargs=x, dynamic_shapes=dyn, strict=False), True
    except Exception as e:  # a model that specialises on its batch (a reshape with a literal B) exports static
        first = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        print(f"note: the batch dimension could not be made dynamic ({first}); exporting for batch 3",
              file=sys.stderr)
        return export(model, (), kwargs=x, strict=False), False


def _custom_ops(ep) -> list[str]:
    ops = set()
    for n in ep.graph.nodes:
        if n.op == "call_function" and str(getattr(n.target, "namespace", "")) == "bkdsl":
            ops.add(str(n.target))
    return sorted(ops)


def export_torch(model: PhysicalModel, path: Path) -> dict:
    ep, dynamic = _export_program(model)
    needs = _custom_ops(ep)
    if needs:
        raise BkError("E0623", f"the exported program calls bkdsl's own kernels ({', '.join(needs)}), which a "
                               "process without bkdsl cannot load", help="export from a CPU run (the reference "
                               "implementations), or use --format safetensors")
    meta = metadata(model, "torch.export", dynamic)
    torch.export.save(ep, str(path), extra_files={"bkdsl.json": json.dumps(meta)})
    back = torch.export.load(str(path)).module()
    meta["max_rel_err"] = _check("torch.export", path, lambda x: model(**x), lambda x: back(**x),
                                 [3, 5] if dynamic else [3], model)
    return meta


def export_onnx(model: PhysicalModel, path: Path) -> dict:
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch.onnx's dynamo exporter needs it)
    except ImportError as e:
        raise BkError("E0623", f"--format onnx needs the `{e.name}` package, which is not installed",
                      help="pip install 'bkdsl[export]' (onnx, onnxscript, onnxruntime)") from None
    x = example_inputs(model, 3)
    batch = torch.export.Dim("batch", min=1)
    dyn = {n: ({0: batch} if t.ndim >= 1 else None) for n, t in x.items()}
    named = named_signature(model)
    try:
        try:
            prog = torch.onnx.export(named, (), kwargs=x, dynamo=True, dynamic_shapes=dyn, verbose=False,
                                     input_names=list(x), output_names=list(model.outputs))
            dynamic = True
        except Exception as e:
            first = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
            print(f"note: the batch dimension could not be made dynamic ({first}); exporting for batch 3",
                  file=sys.stderr)
            prog = torch.onnx.export(named, (), kwargs=x, dynamo=True, verbose=False,
                                     input_names=list(x), output_names=list(model.outputs))
            dynamic = False
        prog.save(str(path))
    except Exception as e:
        path.unlink(missing_ok=True)
        raise BkError("E0623", f"torch.onnx could not export the model: {type(e).__name__}: {str(e).splitlines()[0][:200]}",
                      help="use --format torch.export or safetensors") from None
    meta = metadata(model, "onnx", dynamic)
    m = onnx.load(str(path))
    m.metadata_props.add(key="bkdsl", value=json.dumps(meta))
    onnx.save(m, str(path))
    try:
        import onnxruntime as ort
    except ImportError:
        meta["verified"] = False
        print("note: onnxruntime is not installed; the onnx export was not run back (unverified)", file=sys.stderr)
        return meta
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]

    def run_back(xx):
        outs = sess.run(None, {n: xx[n].numpy() for n in names})
        return {o.name: torch.from_numpy(v) for o, v in zip(sess.get_outputs(), outs)}

    meta["max_rel_err"] = _check("onnx", path, lambda xx: model(**xx), run_back, [3, 5] if dynamic else [3], model)
    meta["verified"] = True
    return meta


EXPORTERS = {"safetensors": export_safetensors, "torch.export": export_torch, "onnx": export_onnx}


def export_run(rundir: str | Path, fmt: str = "torch.export", out: str | Path | None = None,
               weights: str = "best") -> tuple[Path, dict]:
    """Export a run's model (physical units) to ``out`` (default ``RUNDIR/export/<file>``); returns
    (path, metadata). E0622 for a directory that is not a run, E0623 for an export that fails its check."""
    if fmt not in FORMATS:
        raise BkError("E0623", f"unknown export format `{fmt}`", help=f"use one of {', '.join(FORMATS)}")
    model = load_run(rundir, weights=weights, device="cpu")
    path = Path(out) if out is not None else Path(rundir) / "export" / SUFFIX[fmt]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BkError("E0611", f"cannot create `{path.parent}`: {e.strerror}", help="choose another --output") from None
    with torch.no_grad():
        meta = EXPORTERS[fmt](model, path)
    return path, meta


# -- command line ---------------------------------------------------------------------------------
def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("export", help="export a trained run (physical units) for use without bkdsl",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("rundir", help="a run directory written by `bkdsl train`")
    p.add_argument("--format", choices=FORMATS, default="torch.export")
    p.add_argument("-o", "--output", default=None, metavar="FILE",
                   help="where to write (default RUNDIR/export/model.{safetensors,pt2,onnx})")
    p.add_argument("--weights", choices=("best", "last"), default="best")
    p.set_defaults(fn=cmd_export)
    return p


def cmd_export(args) -> int:
    path, meta = export_run(args.rundir, args.format, args.output, args.weights)
    ins = ", ".join(f"{n} [{i['unit'] or '1'}]" for n, i in meta["inputs"].items())
    outs = ", ".join(f"{n} [{o['unit'] or '1'}]" for n, o in meta["outputs"].items())
    checked = ("checked: max relative error %.2g" % meta["max_rel_err"]) if "max_rel_err" in meta else "unverified"
    print(f"wrote {path} ({args.format}; inputs {ins} → outputs {outs}; {checked})")
    return 0
