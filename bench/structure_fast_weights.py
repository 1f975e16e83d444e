"""Delta-rule fast weights: the chunked parallel-in-time form against the recurrent reference.

float64, B = 2, H = 4, T = 1024, d_k = d_v = 64, β = σ(·), φ = ELU + 1 (L1-normalised keys), both
rules, normaliser on and off, chunk 64. Reports the max abs difference of outputs and final states,
and CPU wall times of the two forms (the chunked form is what a later kernel fuses).

    python bench/structure_fast_weights.py
"""

from __future__ import annotations

import sys
import time

import torch

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from structure_common import write  # noqa: E402

from bkdsl.nn.fast_weights import elu_plus_one, fast_weight_chunked, fast_weight_recurrent  # noqa: E402


def main() -> None:
    B, H, T, D = 2, 4, 1024, 64
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    q, k = elu_plus_one(r(B, H, T, D)), elu_plus_one(r(B, H, T, D))
    q, k = q / q.sum(-1, keepdim=True), k / k.sum(-1, keepdim=True)
    v, beta = r(B, H, T, D), torch.sigmoid(r(B, H, T))
    rows = []
    for rule in ("delta", "additive"):
        for normalize in (True, False):
            t0 = time.perf_counter()
            y1, (W1, z1) = fast_weight_recurrent(q, k, v, beta, rule, normalize)
            t1 = time.perf_counter()
            y2, (W2, z2) = fast_weight_chunked(q, k, v, beta, rule, normalize, chunk=64)
            t2 = time.perf_counter()
            rows.append({"rule": rule, "normalize": normalize,
                         "max_abs_diff_y": float((y1 - y2).abs().max()),
                         "max_abs_diff_state": float((W1 - W2).abs().max()),
                         "max_abs_y": float(y1.abs().max()),
                         "recurrent_s": t1 - t0, "chunked_s": t2 - t1})
            print(rows[-1])
    write("structure_fast_weights", {"sizes": {"B": B, "H": H, "T": T, "d_k": D, "d_v": D, "chunk": 64},
                                     "dtype": "float64", "tolerance": 1e-5, "rows": rows,
                                     "max_abs_diff": max(x["max_abs_diff_y"] for x in rows)})


if __name__ == "__main__":
    main()
