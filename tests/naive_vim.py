"""An independent, deliberately naive Vim forward written straight from VIM_SPEC.md.

Per-timestep Python loops, explicit flips, no chunking: slow, but a second reading of the spec that the
real implementation is checked against. Works from a bare state dict in the release layout.
"""
import math

import torch
import torch.nn.functional as F


def naive_scan(u, delta, A, B, C, D):
    """u, delta (Bt, E, L); A (E, N); B, C (Bt, N, L); D (E). Returns y (Bt, E, L). Per-timestep loop."""
    bt, e, l = u.shape
    h = torch.zeros(bt, e, A.shape[1], dtype=u.dtype)
    ys = []
    for t in range(l):
        h = torch.exp(delta[:, :, t, None] * A) * h + delta[:, :, t, None] * B[:, None, :, t] * u[:, :, t, None]
        ys.append((h * C[:, None, :, t]).sum(-1) + D * u[:, :, t])
    return torch.stack(ys, dim=-1)


def naive_direction(xz, sd, p, sfx, a_name, d_name, dt_rank, d_state):
    x, z = xz.chunk(2, dim=1)
    w = sd[f"{p}conv1d{sfx}.weight"]  # (E, 1, K)
    k = w.shape[-1]
    xp = F.pad(x, (k - 1, 0))
    conv = sum(w[None, :, 0, j, None] * xp[:, :, j:j + x.shape[-1]] for j in range(k)) + sd[f"{p}conv1d{sfx}.bias"][None, :, None]
    u = F.silu(conv)
    dbl = torch.einsum("bel,re->blr", u, sd[f"{p}x_proj{sfx}.weight"])
    dt, Bm, Cm = dbl.split([dt_rank, d_state, d_state], dim=-1)
    delta = F.softplus(torch.einsum("blr,er->bel", dt, sd[f"{p}dt_proj{sfx}.weight"]) + sd[f"{p}dt_proj{sfx}.bias"][None, :, None])
    A = -torch.exp(sd[f"{p}{a_name}"])
    y = naive_scan(u, delta, A, Bm.transpose(1, 2), Cm.transpose(1, 2), sd[f"{p}{d_name}"])
    return y * F.silu(z)


def rmsnorm(x, w, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def naive_vim_logits(sd, img, stride=16, patch=16, eps=1e-5):
    sd = {k: v.double() for k, v in sd.items()}
    img = img.double()
    dim = sd["patch_embed.proj.weight"].shape[0]
    d_state = sd["layers.0.mixer.A_log"].shape[1]
    dt_rank = math.ceil(dim / 16)
    depth = len({k.split(".")[1] for k in sd if k.startswith("layers.")})
    x = F.conv2d(img, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=stride)
    x = x.flatten(2).transpose(1, 2)
    m = x.shape[1]
    pos = m // 2
    x = torch.cat([x[:, :pos], sd["cls_token"].expand(x.shape[0], -1, -1), x[:, pos:]], dim=1)
    x = x + sd["pos_embed"]
    residual, hidden = None, x
    for i in range(depth):
        p = f"layers.{i}.mixer."
        residual = hidden if residual is None else residual + hidden
        h = rmsnorm(residual, sd[f"layers.{i}.norm.weight"], eps)
        xz = torch.einsum("bld,fd->bfl", h, sd[p + "in_proj.weight"])
        o_f = naive_direction(xz, sd, p, "", "A_log", "D", dt_rank, d_state)
        o_b = naive_direction(xz.flip(-1), sd, p, "_b", "A_b_log", "D_b", dt_rank, d_state)
        hidden = torch.einsum("bel,de->bld", (o_f + o_b.flip(-1)) / 2, sd[p + "out_proj.weight"])
    out = rmsnorm(residual + hidden, sd["norm_f.weight"], eps)
    return out[:, pos] @ sd["head.weight"].t() + sd["head.bias"]
