"""PyTorch reference of the fine-tuning heads in package model (Go).

The VQA and NLVR2 heads of model/vqa.go and model/nlvr2.go, on the model
of e2evlp.py (imported, not copied), written plainly so that the Go heads
can be checked against them (model/downstream_parity_test.go):

    pooled(pair) = tanh(itm.pool(encoder([CLS] text [SEP] + image tokens)[:, 0]))
    head(x)      = out(LayerNorm(GELU(dense(x))))              dense: in -> 2d
    VQA          logits = vqa_head(pooled)                         [B, A]
                 loss   = sum over answers of BCE(logits, soft scores), mean over rows
    NLVR2        logits = nlvr2_head(cat(pooled(text, left), pooled(text, right)))   [B, 2]
                 loss   = cross-entropy, mean over rows

NLVR2's two passes run here as two separate forwards (the Go model runs
one batch of 2B rows); with frozen BatchNorm both are the same computation.

Usage (parity): downstream.py parity DIR
    DIR holds what e2evlp.py's parity reads (config.json, weights.bin +
    weights.json) plus head.bin + head.json (the heads' parameters, same
    format), vqa.json ({"batch": PairBatch, "targets": [B][A]}), nlvr2.json
    (an NLVR2Batch) and grads.json (parameter names, model's or heads').
    Writes DIR/out.json: {"vqa"|"nlvr2": {"loss", "logits", "grads"}}.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2evlp  # noqa: E402


class Classifier(nn.Module):
    """LXMERT's and UNITER's two-layer answer head."""

    def __init__(self, d_in, hidden, classes):
        super().__init__()
        self.dense = nn.Linear(d_in, hidden)
        self.ln = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, classes)

    def forward(self, x):
        return self.out(self.ln(F.gelu(self.dense(x))))


class Heads(nn.Module):
    def __init__(self, d, answers):
        super().__init__()
        self.vqa_head = Classifier(d, 2 * d, answers)
        self.nlvr2_head = Classifier(2 * d, 2 * d, 2)


def pooled(m, images, pmask, ids, tpad):
    img, _, img_pad = m.image_tokens(images, pmask)
    x = m.encode(ids, tpad, img, img_pad)  # [B,L+hw,d]
    return torch.tanh(m.itm.pool(x[:, 0]))  # [B,d]


def pair_tensors(b, images="Images", mask="PixelMask"):
    B, H, W, L = b["Size"], b["Height"], b["Width"], b["SeqLen"]
    return (torch.tensor(b[images], dtype=torch.float32).view(B, 3, H, W),
            torch.tensor(b[mask]).view(B, H, W),
            torch.tensor(b["TokenIDs"]).view(B, L),
            torch.tensor(b["TokenMask"]).view(B, L))


def vqa(m, heads, d):
    images, pmask, ids, tpad = pair_tensors(d["batch"])
    targets = torch.tensor(d["targets"], dtype=torch.float32)  # [B,A]
    logits = heads.vqa_head(pooled(m, images, pmask, ids, tpad))  # [B,A]
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")  # [B,A]
    return logits, bce.sum(1).mean()


def nlvr2(m, heads, b):
    left, lmask, ids, tpad = pair_tensors(b, "Left", "LeftMask")
    right, rmask, _, _ = pair_tensors(b, "Right", "RightMask")
    x = torch.cat([pooled(m, left, lmask, ids, tpad), pooled(m, right, rmask, ids, tpad)], 1)  # [B,2d]
    logits = heads.nlvr2_head(x)  # [B,2]
    return logits, F.cross_entropy(logits, torch.tensor(b["Labels"]))


def load_heads(heads, d):
    index = json.load(open(d + "/head.json"))
    raw = np.fromfile(d + "/head.bin", dtype="<f4")
    state = heads.state_dict()
    for e in index:
        n = int(np.prod(e["shape"]))
        state[e["name"]].copy_(torch.from_numpy(raw[e["offset"]:e["offset"] + n].copy()).view(e["shape"]))
    missing = set(state) - {e["name"] for e in index}
    if missing:
        raise KeyError("not in the export: %s" % sorted(missing))


def parity(d):
    c = json.load(open(d + "/config.json"))
    want = json.load(open(d + "/grads.json"))
    vqa_in = json.load(open(d + "/vqa.json"))
    out = {}
    for task, run, arg in (("vqa", vqa, vqa_in), ("nlvr2", nlvr2, json.load(open(d + "/nlvr2.json")))):
        m = e2evlp.E2EVLP(c)
        e2evlp.load_weights(m, d)
        heads = Heads(c["DModel"], len(vqa_in["targets"][0]))
        load_heads(heads, d)
        m.eval()
        heads.eval()
        logits, loss = run(m, heads, arg)
        loss.backward()
        params = dict(m.named_parameters())
        params.update(heads.named_parameters())
        grads = {}
        for n in want:
            g = params[n].grad
            grads[n] = [] if g is None else g.reshape(-1).tolist()
        out[task] = {"loss": float(loss), "logits": logits.detach().reshape(-1).tolist(), "grads": grads}
    json.dump(out, open(d + "/out.json", "w"))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "parity":
        parity(sys.argv[2])
    else:
        sys.exit(__doc__)
