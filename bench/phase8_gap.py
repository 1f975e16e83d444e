"""Train/test gap of a small model after a few CPU steps (issue #15, docs/phase8.md "Why phase8 plateaus"):
train ``steps`` steps (lr 3e-3, 20 warm-up steps, no decay), then score one train batch and the first
32 test windows in train and in eval mode, in bits per byte, and by quarter of the sequence.

  OMP_NUM_THREADS=1 .venv/bin/python bench/phase8_gap.py phase8 "phase8()" 100
  OMP_NUM_THREADS=1 .venv/bin/python bench/phase8_gap.py gpt "gpt_baseline()" 100 [phase8]   # [optimizer of]
"""
import sys, math, torch, torch.nn.functional as F
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from phase8_vs_gpt import Data, compile_model, make_optimizer
from bkdsl.train.reports import data_dependent_init
torch.manual_seed(0)
data = Data(128, 2_000_000, 128, torch.device('cpu'))
kind, model_s, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
m = compile_model("phase8.bk" if kind == "phase8" else "gpt_baseline.bk", model_s)
it = data.batches(32, 0); first = next(it)
data_dependent_init(m, lambda mm: mm(first[:, :-1]))
opt = make_optimizer(sys.argv[4] if len(sys.argv) > 4 else kind, m, 3e-3)
def ce(w):
    lg = m(w[:, :-1])["logits"]
    return F.cross_entropy(lg.reshape(-1, 256), w[:, 1:].reshape(-1))
for k in range(steps):
    for g in opt.param_groups: g["lr"] = 3e-3 * min(1, (k + 1) / 20)
    opt.zero_grad(); l = ce(first if k == 0 else next(it)); l.backward(); opt.step()
tr = next(it); te = data.test[:32]
with torch.no_grad():
    for mode in ("train", "eval"):
        getattr(m, mode)()
        print(kind, mode, "train-batch bits", round(float(ce(tr)) / math.log(2), 3), "test-batch bits", round(float(ce(te)) / math.log(2), 3), flush=True)
    m.train()
    # per-position test loss: first block vs later
    lg = m(te[:, :-1])["logits"]
    l = F.cross_entropy(lg.reshape(-1, 256), te[:, 1:].reshape(-1), reduction="none").view(32, -1) / math.log(2)
    print(kind, "test bits by position quarter", [round(float(x), 3) for x in l.view(32, 4, -1).mean((0, 2))])
    lg = m(tr[:, :-1])["logits"]
    l = F.cross_entropy(lg.reshape(-1, 256), tr[:, 1:].reshape(-1), reduction="none").view(32, -1) / math.log(2)
    print(kind, "train bits by position quarter", [round(float(x), 3) for x in l.view(32, 4, -1).mean((0, 2))])
