"""PyTorch reference of the E2E-VLP model in package model (Go).

The same architecture, parameter names and losses as model/*.go, written
plainly so that the Go model can be checked against it (the parity test) and
timed next to it. Debian's python3-torch 1.13 on CPU is enough; a CUDA
PyTorch works too.

Usage (timing): e2evlp.py bench PRESET_JSON [--device cuda] [--batch 32] [--side 384] [--steps 20]
    Times full training steps (forward, losses with the Hungarian matcher,
    backward, AdamW) on a random batch of the given shapes, in fp32 and in
    bf16 autocast, and prints the median step time of each.

Usage (data-parallel peer): e2evlp.py ddp PRESET_JSON BATCH_JSON [--ranks 2] [--threads 1] [--steps 40]
    Runs the model in DistributedDataParallel (Gloo on the CPU, NCCL with
    --device cuda), one process per rank on this host, each training on the
    batch in BATCH_JSON (a data.Batch as JSON: the per-rank batch vlp bench
    train builds from the same data). Prints one JSON line: the median step
    and its phases in milliseconds (forward, backward with DDP's overlapped
    all-reduce, optimizer) and samples/s over every rank.

Usage (parity): e2evlp.py parity DIR
    DIR holds config.json, weights.bin + weights.json (every parameter and
    buffer as raw little-endian float32, with name/shape/offset), batch.json
    and grads.json (the names of the parameters whose gradients to report).
    Writes DIR/out.json: {"losses": {name: value}, "grads": {name: [..]}}.
"""
import json
import math
import sys

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn

IGNORE = -100


class LayerNorm32(nn.LayerNorm):
    """LayerNorm in float32 whatever its input, as autocast runs it on CUDA (torch 1.13's CPU
    autocast leaves it out and then fails on a bf16 input with float32 weights); a no-op cast in
    float32."""

    def forward(self, x):
        return super().forward(x.float())


class FrozenBN(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.register_buffer("weight", torch.ones(n))
        self.register_buffer("bias", torch.zeros(n))
        self.register_buffer("running_mean", torch.zeros(n))
        self.register_buffer("running_var", torch.ones(n))

    def forward(self, x):
        scale = self.weight * (self.running_var + 1e-5).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale[None, :, None, None] + shift[None, :, None, None]


def make_bn(n, frozen):
    return FrozenBN(n) if frozen else nn.BatchNorm2d(n)


class Basic(nn.Module):
    expansion = 1

    def __init__(self, cin, width, stride, dilation, frozen):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 3, stride, dilation, dilation, bias=False)
        self.bn1 = make_bn(width, frozen)
        self.conv2 = nn.Conv2d(width, width, 3, 1, dilation, dilation, bias=False)
        self.bn2 = make_bn(width, frozen)
        self.downsample = None
        if stride != 1 or cin != width:
            self.downsample = nn.Sequential(nn.Conv2d(cin, width, 1, stride, bias=False), make_bn(width, frozen))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (self.downsample(x) if self.downsample is not None else x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, width, stride, dilation, frozen):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = make_bn(width, frozen)
        self.conv2 = nn.Conv2d(width, width, 3, stride, dilation, dilation, bias=False)
        self.bn2 = make_bn(width, frozen)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = make_bn(width * 4, frozen)
        self.downsample = None
        if stride != 1 or cin != width * 4:
            self.downsample = nn.Sequential(nn.Conv2d(cin, width * 4, 1, stride, bias=False), make_bn(width * 4, frozen))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (self.downsample(x) if self.downsample is not None else x))


LAYOUT = {18: (Basic, [2, 2, 2, 2]), 34: (Basic, [3, 4, 6, 3]), 50: (Bottleneck, [3, 4, 6, 3]),
          101: (Bottleneck, [3, 4, 23, 3]), 152: (Bottleneck, [3, 8, 36, 3])}


class ResNet(nn.Module):
    def __init__(self, depth, width, frozen, dilate_c5, stem_pool=True):
        super().__init__()
        block, counts = LAYOUT[depth]
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = make_bn(width, frozen)
        cin = width
        for s, n in enumerate(counts):
            w = width * (2 ** s)
            stride = 1 if s == 0 else 2
            blocks = []
            for i in range(n):
                st, dil = (stride, 1) if i == 0 else (1, 1)
                if s == 3 and dilate_c5:
                    st, dil = 1, (1 if i == 0 else 2)
                blocks.append(block(cin, w, st, dil, frozen))
                cin = w * block.expansion
            setattr(self, "layer%d" % (s + 1), nn.Sequential(*blocks))
        self.out_channels = cin
        self.stem_pool = stem_pool

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        if self.stem_pool:
            x = F.max_pool2d(x, 3, 2, 1)
        for s in range(1, 5):
            x = getattr(self, "layer%d" % s)(x)
        return x


def sine_position(mask, d):
    """DETR's normalised 2-D sine positions. mask [B,h,w] True on padding -> [B,h*w,d]."""
    npf = d // 2
    not_mask = (~mask).float()
    y = not_mask.cumsum(1)
    x = not_mask.cumsum(2)
    eps, scale = 1e-6, 2 * math.pi
    y = y / (y[:, -1:, :] + eps) * scale
    x = x / (x[:, :, -1:] + eps) * scale
    dim_t = torch.arange(npf, dtype=torch.float32, device=mask.device)
    dim_t = 10000 ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / npf)
    px = x[:, :, :, None] / dim_t
    py = y[:, :, :, None] / dim_t
    px = torch.stack((px[..., 0::2].sin(), px[..., 1::2].cos()), dim=4).flatten(3)
    py = torch.stack((py[..., 0::2].sin(), py[..., 1::2].cos()), dim=4).flatten(3)
    return torch.cat((py, px), dim=3).flatten(1, 2)


class Attention(nn.Module):
    """Multi-head attention with nn.MultiheadAttention's parameter layout."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(nn.init.xavier_uniform_(torch.empty(3 * d, d)))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d))
        self.out_proj = nn.Linear(d, d)

    def forward(self, q_in, k_in, v_in, key_pad=None, causal=False):
        B, Lq, d = q_in.shape
        Lk = k_in.shape[1]
        h, hd = self.heads, d // self.heads
        wq, wk, wv = self.in_proj_weight.chunk(3)
        bq, bk, bv = self.in_proj_bias.chunk(3)
        q = F.linear(q_in, wq, bq).view(B, Lq, h, hd).transpose(1, 2)  # [B,h,Lq,hd]
        k = F.linear(k_in, wk, bk).view(B, Lk, h, hd).transpose(1, 2)  # [B,h,Lk,hd]
        v = F.linear(v_in, wv, bv).view(B, Lk, h, hd).transpose(1, 2)  # [B,h,Lk,hd]
        if hasattr(F, "scaled_dot_product_attention"):  # PyTorch 2.x: the fused kernel
            allow = None
            if key_pad is not None:
                allow = ~key_pad[:, None, None, :]  # [B,1,1,Lk]
            if causal:
                tri = torch.ones(Lq, Lk, dtype=torch.bool, device=q.device).tril()
                allow = tri if allow is None else allow & tri
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=allow)
        else:
            s = q @ k.transpose(-1, -2) / math.sqrt(hd)  # [B,h,Lq,Lk]
            if key_pad is not None:
                s = s.masked_fill(key_pad[:, None, None, :], float("-inf"))
            if causal:
                cm = torch.ones(Lq, Lk, dtype=torch.bool, device=q.device).triu(1)
                s = s.masked_fill(cm[None, None], float("-inf"))
            a = s.softmax(-1) @ v  # [B,h,Lq,hd]
        return self.out_proj(a.transpose(1, 2).reshape(B, Lq, d))


class FFN(nn.Module):
    def __init__(self, d, f):
        super().__init__()
        self.lin1 = nn.Linear(d, f)
        self.lin2 = nn.Linear(f, d)

    def forward(self, x):
        return self.lin2(F.relu(self.lin1(x)))


class EncoderLayer(nn.Module):
    def __init__(self, d, heads, f):
        super().__init__()
        self.ln1, self.attn = LayerNorm32(d), Attention(d, heads)
        self.ln2, self.ffn = LayerNorm32(d), FFN(d, f)

    def forward(self, x, pad):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, pad)
        return x + self.ffn(self.ln2(x))


class DecoderLayer(nn.Module):
    def __init__(self, d, heads, f):
        super().__init__()
        self.ln1, self.self_attn = LayerNorm32(d), Attention(d, heads)
        self.ln2, self.cross_attn = LayerNorm32(d), Attention(d, heads)
        self.ln3, self.ffn = LayerNorm32(d), FFN(d, f)

    def forward(self, x, qpos, self_pad, causal, mem, mem_key, mem_pad):
        pos = (lambda h: h) if qpos is None else (lambda h: h + qpos)
        h = self.ln1(x)
        qk = pos(h)
        x = x + self.self_attn(qk, qk, h, self_pad, causal)
        x = x + self.cross_attn(pos(self.ln2(x)), mem_key, mem, mem_pad)
        return x + self.ffn(self.ln3(x))


class Stack(nn.Module):
    def __init__(self, layer, n, d, heads, f):
        super().__init__()
        self.layers = nn.ModuleList([layer(d, heads, f) for _ in range(n)])
        self.ln_f = LayerNorm32(d)


class E2EVLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        d = c["DModel"]
        self.backbone = ResNet(c["ResNetDepth"], c["ResNetWidth"], c["FrozenBN"], c["DilateC5"], c["StemPool"])
        self.input_proj = nn.Conv2d(self.backbone.out_channels, d, 1)
        self.text = nn.Module()
        self.text.tok_emb = nn.Embedding(c["VocabSize"], d)
        self.text.pos_emb = nn.Embedding(c["MaxTextLen"], d)
        self.text.seg_emb = nn.Embedding(2, d)
        self.text.ln = LayerNorm32(d)
        self.encoder = Stack(EncoderLayer, c["EncoderLayers"], d, c["Heads"], c["FFN"])
        self.mlm = nn.Module()
        self.mlm.dense = nn.Linear(d, d)
        self.mlm.ln = LayerNorm32(d)
        self.mlm.bias = nn.Parameter(torch.zeros(c["VocabSize"]))
        if not c["TieMLM"]:
            self.mlm.out = nn.Linear(d, c["VocabSize"], bias=False)
        self.itm = nn.Module()
        self.itm.pool = nn.Linear(d, d)
        self.itm.cls = nn.Linear(d, 2)
        self.det_decoder = Stack(DecoderLayer, c["DecoderLayers"], d, c["Heads"], c["FFN"])
        self.det_decoder.query_embed = nn.Embedding(c["NumQueries"], d)
        self.det_head = nn.Module()
        self.det_head.class_embed = nn.Linear(d, c["NumClasses"] + 1)
        self.det_head.attr_embed = nn.Linear(d, c["NumAttributes"])
        self.det_head.bbox_embed = nn.Module()
        self.det_head.bbox_embed.layers = nn.ModuleList([nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, 4)])
        n_cap = 0 if c["SharedDecoder"] else c["DecoderLayers"]
        self.cap_decoder = Stack(DecoderLayer, n_cap, d, c["Heads"], c["FFN"])
        self.cap_decoder.pos_emb = nn.Embedding(c["MaxCaptionLen"], d)
        self.cap_decoder.ln = LayerNorm32(d)
        self.cap_head = nn.Module()
        self.cap_head.bias = nn.Parameter(torch.zeros(c["VocabSize"]))

    # --- encoder ---------------------------------------------------------
    def image_tokens(self, images, pixel_mask):
        f = self.input_proj(self.backbone(images))  # [B,d,h,w]
        B, d, h, w = f.shape
        mask = F.interpolate(pixel_mask[None].float(), size=(h, w))[0].bool()  # [B,h,w]
        pos = sine_position(mask, d)  # [B,hw,d]
        tok = f.flatten(2).transpose(1, 2) + pos + self.text.seg_emb.weight[1]  # [B,hw,d]
        return tok, pos, mask.flatten(1)

    def encode(self, ids, text_pad, img, img_pad):
        L = ids.shape[1]
        t = self.text.tok_emb(ids) + self.text.pos_emb.weight[:L] + self.text.seg_emb.weight[0]  # [B,L,d]
        x = self.text.ln(torch.cat([t, img], 1))  # [B,L+hw,d]
        pad = torch.cat([text_pad, img_pad], 1)  # [B,L+hw]
        for layer in self.encoder.layers:
            x = layer(x, pad)
        return self.encoder.ln_f(x)

    # --- decoders --------------------------------------------------------
    def detect(self, mem, mem_key, mem_pad):
        B = mem.shape[0]
        qpos = self.det_decoder.query_embed.weight  # [Q,d]
        x = qpos[None].expand(B, -1, -1)  # [B,Q,d]
        outs = []
        for layer in self.det_decoder.layers:
            x = layer(x, qpos, None, False, mem, mem_key, mem_pad)
            outs.append(self.det_decoder.ln_f(x))
        hs = torch.stack(outs)  # [Ly,B,Q,d]
        logits = self.det_head.class_embed(hs)  # [Ly,B,Q,C+1]
        attrs = self.det_head.attr_embed(hs)  # [Ly,B,Q,A]
        b = hs
        for i, lin in enumerate(self.det_head.bbox_embed.layers):
            b = lin(b)
            if i < 2:
                b = F.relu(b)
        return logits, attrs, b.sigmoid()  # [Ly,B,Q,4]

    def caption(self, ids, pad, mem, mem_key, mem_pad):
        T = ids.shape[1]
        x = self.cap_decoder.ln(self.text.tok_emb(ids) + self.cap_decoder.pos_emb.weight[:T])  # [B,T,d]
        layers = self.det_decoder.layers if self.c["SharedDecoder"] else self.cap_decoder.layers
        for layer in layers:
            x = layer(x, None, pad, True, mem, mem_key, mem_pad)
        x = self.cap_decoder.ln_f(x)
        return x @ self.text.tok_emb.weight.t() + self.cap_head.bias  # [B,T,V]


# --- matcher and criterion ------------------------------------------------
def box_xyxy(b):
    cx, cy, w, h = b.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def giou_pairs(a, b):
    """a, b: [N,4] xyxy, elementwise -> [N]."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.max(a[:, :2], b[:, :2])
    rb = torch.min(a[:, 2:], b[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    union = area_a + area_b - inter
    iou = inter / union
    lt = torch.min(a[:, :2], b[:, :2])
    rb = torch.max(a[:, 2:], b[:, 2:])
    wh = (rb - lt).clamp(min=0)
    area = wh[:, 0] * wh[:, 1]
    return iou - (area - union) / area


def giou_matrix(a, b):
    """a [N,4], b [M,4] xyxy -> [N,M]: giou_pairs of every pair, the same arithmetic."""
    area_a = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))[:, None]
    area_b = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[None, :]
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a + area_b - inter
    iou = inter / union
    lt = torch.min(a[:, None, :2], b[None, :, :2])
    rb = torch.max(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    area = wh[..., 0] * wh[..., 1]
    return iou - (area - union) / area


def match(logits, boxes, tg, w):
    """One layer, as DETR matches: logits [B,Q,C+1], boxes [B,Q,4] -> per image (q_idx, t_idx).
    One cost matrix for the whole batch on the device ([B·Q, T] against every image's targets),
    one copy to the host, one assignment per image."""
    B, Q = logits.shape[:2]
    sizes = tg["sizes"]
    if tg["count"] == 0:
        return [([], []) for _ in sizes]
    with torch.no_grad():
        prob = logits.flatten(0, 1).softmax(-1).double()  # [B·Q, C+1]
        pb = boxes.flatten(0, 1).double()  # [B·Q, 4]
        tb = tg["boxes64"]  # [T, 4]
        c_class = -prob[:, tg["classes"]]  # [B·Q, T]
        c_l1 = torch.cdist(pb, tb, p=1)  # [B·Q, T]
        g = giou_matrix(box_xyxy(pb), box_xyxy(tb))  # [B·Q, T]
        cost = (w["Class"] * c_class + w["L1"] * c_l1 - w["GIoU"] * g).view(B, Q, -1).cpu()
    out = []
    for b, c in enumerate(cost.split(sizes, -1)):
        r, t = linear_sum_assignment(c[b].numpy()) if sizes[b] else ([], [])
        out.append((r, t))
    return out


def detection_losses(logits, attrs, boxes, tg, c, w):
    B, Q, C1 = logits.shape
    idx = match(logits, boxes, tg, w)
    dev = logits.device
    weight = torch.ones(C1, device=dev)
    weight[-1] = w["NoObject"]
    nb = max(tg["count"], 1)
    if tg["count"] == 0:
        tgt_cls = torch.full((B * Q,), C1 - 1, dtype=torch.long, device=dev)
        loss_ce = F.cross_entropy(logits.reshape(B * Q, C1).float(), tgt_cls, weight=weight)
        z = boxes.sum() * 0
        return {"ce": loss_ce, "l1": z, "giou": z, "attr": z}
    # The matched pairs, image by image in assignment order: flat query index, target index.
    qi = torch.cat([torch.as_tensor(r, dtype=torch.long) + b * Q for b, (r, _) in enumerate(idx)]).to(dev)
    ti = torch.cat([torch.as_tensor(t, dtype=torch.long) + tg["offsets"][b] for b, (_, t) in enumerate(idx)]).to(dev)
    tgt_cls = torch.full((B * Q,), C1 - 1, dtype=torch.long, device=dev)
    tgt_cls[qi] = tg["classes"][ti]
    loss_ce = F.cross_entropy(logits.reshape(B * Q, C1).float(), tgt_cls, weight=weight)
    pb = boxes.reshape(B * Q, 4)[qi].float()
    tb = tg["boxes"][ti]
    loss_l1 = (pb - tb).abs().sum() / nb
    loss_giou = (1 - giou_pairs(box_xyxy(pb), box_xyxy(tb))).sum() / nb
    A = attrs.shape[-1]
    dist = torch.zeros(tg["count"], A, device=dev).index_put_(
        (tg["attr_rows"], tg["attr_cols"]), tg["attr_vals"], accumulate=True)  # [T, A]
    tgt_a = dist[ti]
    la = F.log_softmax(attrs.reshape(B * Q, A)[qi].float(), -1)
    loss_attr = -(la * tgt_a).sum() / max(float(tg["has"][ti.cpu()].sum()), 1)
    return {"ce": loss_ce, "l1": loss_l1, "giou": loss_giou, "attr": loss_attr}


def detection_targets(targets, dev):
    """A batch's objects as tensors, once per batch: classes [T], boxes [T,4], each image's count
    and first index, and each object's attribute distribution as (row, col, weight) triples."""
    sizes = [len(t["classes"]) for t in targets]
    offsets = [sum(sizes[:b]) for b in range(len(sizes))]
    classes = [k for t in targets for k in t["classes"]]
    boxes = [bx for t in targets for bx in t["boxes"]]
    rows, cols, vals, has = [], [], [], []
    for i, al in enumerate(a or [] for t in targets for a in (t["attributes"] or [[]] * len(t["classes"]))):
        for a in al:
            rows.append(i)
            cols.append(a)
            vals.append(1.0 / len(al))
        has.append(1.0 if al else 0.0)
    return {
        "sizes": sizes, "offsets": offsets, "count": len(classes),
        "classes": torch.tensor(classes, dtype=torch.long, device=dev),
        "boxes": torch.tensor(boxes, dtype=torch.float32, device=dev).view(-1, 4),
        "boxes64": torch.tensor(boxes, dtype=torch.float64, device=dev).view(-1, 4),
        "attr_rows": torch.tensor(rows, dtype=torch.long, device=dev),
        "attr_cols": torch.tensor(cols, dtype=torch.long, device=dev),
        "attr_vals": torch.tensor(vals, dtype=torch.float32, device=dev),
        "has": torch.tensor(has, dtype=torch.float32),
    }


def batch_tensors(batch, dev="cpu"):
    """A data.Batch (as JSON) -> tensors on dev, shaped as model.BatchToTensors shapes them."""
    B, H, W, L, T = batch["Size"], batch["Height"], batch["Width"], batch["SeqLen"], batch["CapLen"]
    t = lambda v, **kw: torch.tensor(v, **kw).to(dev)
    return {
        "images": t(batch["Images"], dtype=torch.float32).view(B, 3, H, W),
        "pmask": t(batch["PixelMask"]).view(B, H, W),
        "ids": t(batch["TokenIDs"]).view(B, L),
        "tpad": t(batch["TokenMask"]).view(B, L),
        "mlm": t(batch["MLMLabels"]).view(B, L),
        "itm": t(batch["ITMLabels"]),
        "cap": t(batch["CaptionIDs"]).view(B, T),
        "cpad": t(batch["CaptionMask"]).view(B, T),
        "targets": detection_targets([{"boxes": x["Boxes"] or [], "classes": x["Classes"] or [], "attributes": x["Attributes"] or []}
                                      for x in batch["Targets"]], dev),
    }


def forward_losses(m, bt):
    c = m.c
    w = c["Loss"]
    images, pmask, ids, tpad, mlm = bt["images"], bt["pmask"], bt["ids"], bt["tpad"], bt["mlm"]
    itm, cap, cpad, targets = bt["itm"], bt["cap"], bt["cpad"], bt["targets"]
    B, L = ids.shape

    img, img_pos, img_pad = m.image_tokens(images, pmask)
    x = m.encode(ids, tpad, img, img_pad)  # [B,L+hw,d]
    losses = {}
    # MLM on masked positions only.
    pos = (mlm.reshape(-1) != IGNORE).nonzero()[:, 0]
    if len(pos):
        h = x[:, :L].reshape(B * L, -1)[pos]
        h = m.mlm.ln(F.relu(m.mlm.dense(h)))
        out_w = m.text.tok_emb.weight if c["TieMLM"] else m.mlm.out.weight
        logits = h @ out_w.t() + m.mlm.bias
        losses["mlm"] = F.cross_entropy(logits.float(), mlm.reshape(-1)[pos])
    else:
        losses["mlm"] = x.sum() * 0
    itm_logits = m.itm.cls(torch.tanh(m.itm.pool(x[:, 0])))
    losses["itm"] = F.cross_entropy(itm_logits.float(), itm)
    # Visual tasks: an image-only pass, [CLS] + image tokens.
    v = m.encode(ids[:, :1], tpad[:, :1], img, img_pad)
    mem = v[:, 1:]
    mem_key = mem + img_pos
    logits, attrs, boxes = m.detect(mem, mem_key, img_pad)
    Ly = logits.shape[0]
    for l in range(Ly):
        dl = detection_losses(logits[l], attrs[l], boxes[l], targets, c, w)
        sfx = "" if l == Ly - 1 else "_%d" % l
        if sfx and not w["Aux"]:
            continue
        for k, val in dl.items():
            losses["det_" + k + sfx] = val
    cl = m.caption(cap[:, :-1], cpad[:, :-1], mem, mem_key, img_pad)  # [B,T-1,V]
    tgt = cap[:, 1:].masked_fill(cpad[:, 1:], IGNORE)
    losses["caption"] = F.cross_entropy(cl.reshape(-1, cl.shape[-1]).float(), tgt.reshape(-1))
    total = 0
    for k, val in losses.items():
        total = total + weight_of(k, w) * val
    losses["total"] = total
    return losses


def weight_of(name, w):
    if name.startswith("det_"):
        kind = name[4:].split("_")[0]
        return {"ce": w["Class"], "l1": w["L1"], "giou": w["GIoU"], "attr": w["Attribute"]}[kind]
    return {"mlm": w["MLM"], "itm": w["ITM"], "caption": w["Caption"]}[name]


def load_weights(m, d):
    index = json.load(open(d + "/weights.json"))
    raw = np.fromfile(d + "/weights.bin", dtype="<f4")
    state = m.state_dict()
    for e in index:
        name = e["name"]
        if name not in state:
            raise KeyError("unknown tensor " + name)
        n = int(np.prod(e["shape"])) if e["shape"] else 1
        t = torch.from_numpy(raw[e["offset"]:e["offset"] + n].copy()).view(e["shape"])
        state[name].copy_(t)
    missing = set(state) - {e["name"] for e in index} - {k for k in state if k.endswith("num_batches_tracked")}
    if missing:
        raise KeyError("not in the export: %s" % sorted(missing))


def parity(d):
    c = json.load(open(d + "/config.json"))
    torch.manual_seed(0)
    m = E2EVLP(c)
    load_weights(m, d)
    m.eval()
    batch = json.load(open(d + "/batch.json"))
    losses = forward_losses(m, batch_tensors(batch))
    losses["total"].backward()
    params = dict(m.named_parameters())
    want = json.load(open(d + "/grads.json"))
    grads = {}
    for n in want:
        g = params[n].grad
        grads[n] = [] if g is None else g.reshape(-1).tolist()
    out = {"losses": {k: float(v) for k, v in losses.items()}, "grads": grads}
    json.dump(out, open(d + "/out.json", "w"))


def random_batch(c, B, side, L=16, T=16, objects=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    V = c["VocabSize"]
    ids = torch.randint(5, V, (B, L), generator=g)
    ids[:, 0] = 2
    mlm = torch.full((B, L), IGNORE, dtype=torch.long)
    mlm[:, 2] = ids[:, 2]
    mlm[:, 5] = ids[:, 5]
    targets = []
    for b in range(B):
        bx = (torch.rand(objects, 4, generator=g) * 0.4 + 0.1).tolist()
        targets.append({"Boxes": bx, "Classes": torch.randint(0, c["NumClasses"], (objects,), generator=g).tolist(),
                        "Attributes": [[int(torch.randint(0, c["NumAttributes"], (1,), generator=g))] for _ in range(objects)]})
    return {"Size": B, "Height": side, "Width": side, "SeqLen": L, "CapLen": T,
            "Images": torch.randn(B * 3 * side * side, generator=g).tolist(),
            "PixelMask": [False] * (B * side * side), "TokenIDs": ids.flatten().tolist(),
            "TokenMask": [False] * (B * L), "MLMLabels": mlm.flatten().tolist(),
            "ITMLabels": torch.randint(0, 2, (B,), generator=g).tolist(),
            "CaptionIDs": torch.randint(5, V, (B * T,), generator=g).tolist(), "CaptionMask": [False] * (B * T),
            "Targets": targets}


def bench(args):
    import argparse
    import time
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--side", type=int, default=384)
    ap.add_argument("--steps", type=int, default=20)
    a = ap.parse_args(args)
    c = json.load(open(a.config))
    dev = torch.device(a.device)
    m = E2EVLP(c).to(dev)
    m.train()
    bt = batch_tensors(random_batch(c, a.batch, a.side), dev)
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4, weight_decay=1e-4)
    for mode in ("fp32", "tf32", "bf16"):  # tf32: float32 with TensorFloat-32 matmuls, as vlp's --tf32
        torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
        times = []
        for step in range(a.steps):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=(mode == "bf16")):
                losses = forward_losses(m, bt)
            losses["total"].backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), 0.1)
            opt.step()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        times = sorted(times[3:])
        print("pytorch %s %s: median step %.1f ms (batch %d, %d px)" % (mode, a.device, 1e3 * times[len(times) // 2], a.batch, a.side))


class Losses(nn.Module):
    """The model with forward_losses as its forward, for DistributedDataParallel."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, bt):
        return forward_losses(self.m, bt)


def ddp_rank(rank, a, c, batch, port, q):
    import os
    import time
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    torch.set_num_threads(a.threads)
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    cuda = a.device.startswith("cuda")
    dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=a.ranks)
    dev = torch.device("cuda:%d" % rank if cuda else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = a.tf32  # as vlp's --tf32 (cuDNN's TF32 stays the default)
    torch.backends.cudnn.benchmark = a.cudnn_benchmark  # as vlp's --cudnn-benchmark
    torch.manual_seed(a.seed)
    m = E2EVLP(c).to(dev)
    bt = batch_tensors(batch, dev)
    if a.channels_last:  # as vlp's --channels-last: the images NHWC (the weights stay), the convolutions follow
        bt["images"] = bt["images"].contiguous(memory_format=torch.channels_last)
    m.train()
    dm = DDP(Losses(m), device_ids=[rank] if cuda else None)
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4, weight_decay=1e-4)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    rows = []
    for step in range(a.steps):
        sync()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=a.bf16):  # as vlp's --bf16
            losses = dm(bt)
        sync()
        t1 = time.perf_counter()
        losses["total"].backward()
        sync()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(m.parameters(), a.clip)
        opt.step()
        sync()
        t3 = time.perf_counter()
        rows.append((t3 - t0, t1 - t0, t2 - t1, t3 - t2))
    dist.barrier()
    if rank == 0:
        q.put(rows)
    dist.destroy_process_group()


def ddp(args):
    import argparse
    import socket
    import torch.multiprocessing as mp
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("batch")
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--tf32", action="store_true")
    ap.add_argument("--cudnn-benchmark", action="store_true")
    a = ap.parse_args(args)
    c = json.load(open(a.config))
    batch = json.load(open(a.batch))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    q = ctx.SimpleQueue()
    mp.start_processes(ddp_rank, args=(a, c, batch, port, q), nprocs=a.ranks, join=True, start_method="spawn")
    rows = q.get()[a.warmup:]
    med = lambda i: 1e3 * sorted(r[i] for r in rows)[len(rows) // 2]
    step = med(0)
    print(json.dumps({"ranks": a.ranks, "rows_per_rank": batch["Size"], "steps": len(rows),
                      "step_ms": step, "forward_ms": med(1), "backward_allreduce_ms": med(2), "optimizer_ms": med(3),
                      "samples_per_s": 1e3 * a.ranks * batch["Size"] / step}))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "parity":
        parity(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == "bench":
        bench(sys.argv[2:])
    elif len(sys.argv) >= 4 and sys.argv[1] == "ddp":
        ddp(sys.argv[2:])
    else:
        sys.exit(__doc__)
