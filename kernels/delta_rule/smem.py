"""Shared memory of the delta-rule kernels on sm_90, counted by Triton's own compiler, no GPU needed.

Hopper's limit is 232 448 B per block (227 KB); a configuration above it fails at launch with
OutOfResources. The allocation is fixed when Triton lowers the kernel for its target, so compiling for
``GPUTarget("cuda", 90, 32)`` on a CPU machine gives the same number the H200 reports (checked: the
grads kernel with tf32 operands, 8 warps, 1 stage, gives 253 952 B here and in the first H200 run).
Used by the tests (the default configurations fit) and by ``bench/delta_rule.py --smem`` (the table).
Under ``TRITON_INTERPRET`` the kernels are not compilable objects, so the count runs in a child
process without it: ``python -m bkdsl.kernels.delta_rule.smem NAME DTYPE DOT PHI NORM WARPS STAGES``.
"""

from __future__ import annotations

import os
import subprocess
import sys

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from bkdsl.kernels.delta_rule import chunk as kc

__all__ = ["SMEM_LIMIT_SM90", "KERNELS", "smem_bytes"]

SMEM_LIMIT_SM90 = 232448
KERNELS = {"wy": kc._wy_fwd_kernel, "state": kc._state_fwd_kernel, "out": kc._out_fwd_kernel,
           "dv_local": kc._dv_local_bwd_kernel, "state_bwd": kc._state_bwd_kernel, "grads": kc._grads_bwd_kernel}
_IN_PTRS = {"q_ptr", "k_ptr", "v_ptr", "b_ptr", "dy_ptr", "y_ptr", "dq_ptr", "dk_ptr", "dv_ptr", "db_ptr"}
_PTR = {torch.bfloat16: "*bf16", torch.float16: "*fp16", torch.float32: "*fp32"}


def smem_bytes(name: str, dtype: torch.dtype, dot: str, phi: bool, norm: bool, warps: int, stages: int,
               d: int = 128, block_v: int = 32, block_v_out: int = 64) -> int:
    """Bytes of shared memory of kernel ``name`` (a key of :data:`chunk.CONFIGS`) compiled for sm_90 with
    inputs of ``dtype``, tl.dot precision ``dot``, φ/normaliser flags, (warps, stages), d_k = d_v = d and
    the launchers' block sizes (their defaults ``block_v``, ``block_v_out``). Raises what the compiler raises
    (a configuration that does not compile), or RuntimeError from the child process under the interpreter."""
    kernel = KERNELS[name]
    if not isinstance(kernel, triton.runtime.JITFunction):  # TRITON_INTERPRET: count in a child process
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        args = [name, str(dtype).removeprefix("torch."), dot, str(int(phi)), str(int(norm)), str(warps),
                str(stages), str(d), str(block_v), str(block_v_out)]
        r = subprocess.run([sys.executable, "-m", "bkdsl.kernels.delta_rule.smem", *args], env=env,
                           capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            raise RuntimeError(f"smem count of {name} failed: {r.stderr.strip().splitlines()[-1:]}")
        return int(r.stdout.split()[-1])
    BVf = kc._block(d)
    if name == "grads":
        BV = kc._grads_block_v(dot, block_v_out, BVf)
    elif name == "wy":
        BV = BVf
    else:
        BV = min(BVf, block_v if name in ("state", "state_bwd") else block_v_out)
    meta = {"PHI": phi, "NORM": norm, "BK": kc._block(d), "BV": BV,
            "DOT": kc._grads_dot(dot) if name == "grads" else dot}
    meta = {k: v for k, v in meta.items() if k in kernel.arg_names}
    sig = {a: "constexpr" if a in meta else (_PTR[dtype] if a in _IN_PTRS else "*fp32") if a.endswith("_ptr")
           else "i32" for a in kernel.arg_names}
    src = ASTSource(fn=kernel, signature=sig, constexprs={(kernel.arg_names.index(k),): v for k, v in meta.items()})
    compiled = triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": warps, "num_stages": stages})
    return int(compiled.metadata.shared)


def _main(argv: list[str]) -> int:
    name, dtype, dot, phi, norm, warps, stages, d, bv, bvo = argv
    print(smem_bytes(name, getattr(torch, dtype), dot, phi == "1", norm == "1", int(warps), int(stages), int(d),
                     int(bv), int(bvo)))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
