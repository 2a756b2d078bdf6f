"""Triton kernels of the fused bidirectional scan (see :mod:`vim_backbone.ops.fused_bimamba`).

Layouts (all channels-first, L contiguous where we allocate):
  x, z          (B, E, L)       the mixer input after in_proj
  u, dt         (2, B, E, L)    per direction (0 = forward, 1 = backward) conv+silu output / raw dt
  Bm, Cm        (2, B, N, L)    strided views into the x_proj output (2, B, R + 2N, L)
  A             (2, E, N) fp32  A = -exp(A_log);  D, dt_bias (2, E) fp32

The backward direction is the forward recipe applied to the flipped sequence, expressed in the original
order: an anti-causal conv with the taps reversed, and a scan that runs from t = L - 1 down to 0. Inside a
program the time index of scan step ``s`` of a chunk is ``s`` (forward) or ``CHUNK - 1 - s`` (backward),
so one ``tl.associative_scan`` along the chunk serves both directions without flip copies.
"""
import triton
import triton.language as tl

LOG2E = tl.constexpr(1.4426950408889634)  # globals used inside kernels must be constexpr


@triton.jit
def _softplus(x):
    # torch.nn.functional.softplus with threshold 20; exp(-|x|) keeps the log argument in [1, 2]
    return tl.where(x > 20.0, x, tl.maximum(x, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(x))))


@triton.jit
def _sigmoid(x):
    return 1.0 / (1.0 + tl.exp(-x))


@triton.jit
def _recurrence(a1, b1, a2, b2):
    # (a1, b1) is the earlier segment: h = a2 * (a1 * h0 + b1) + b2
    return a1 * a2, a2 * b1 + b2


# ------------------------------------------------------------------------------------------------ conv


@triton.jit
def _conv_fwd_kernel(
    x_ptr, w_ptr, b_ptr, u_ptr,
    E, L,
    s_x_b, s_x_e, s_x_l,
    s_u_d, s_u_b, s_u_e, s_u_l,
    W: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_L: tl.constexpr,
):
    """u[0] = silu(causal conv(x, w[0]) + b[0]); u[1] = silu(anti-causal conv(x, w[1] reversed) + b[1]).

    w: (2, E, W) fp32, b: (2, E) fp32, u: (2, B, E, L) of any strides (the fused op allocates it
    channels-last, (2, B, L, E) in memory, the layout of the x_proj GEMM and of the scan's loads).
    """
    pid_l = tl.program_id(0)
    pid_e = tl.program_id(1)
    pid_b = tl.program_id(2)
    offs_e = pid_e * BLOCK_E + tl.arange(0, BLOCK_E)
    offs_l = pid_l * BLOCK_L + tl.arange(0, BLOCK_L)
    mask_e = offs_e < E
    x_base = x_ptr + pid_b * s_x_b + offs_e[:, None] * s_x_e
    acc_f = tl.zeros((BLOCK_E, BLOCK_L), tl.float32)
    acc_b = tl.zeros((BLOCK_E, BLOCK_L), tl.float32)
    for k in tl.static_range(W):
        # forward tap k reads x[t - (W - 1) + k]; backward tap k reads x[t + (W - 1) - k]
        t_f = offs_l - (W - 1) + k
        t_b = offs_l + (W - 1) - k
        m_f = mask_e[:, None] & ((t_f >= 0) & (t_f < L))[None, :]
        m_b = mask_e[:, None] & ((t_b >= 0) & (t_b < L))[None, :]
        x_f = tl.load(x_base + t_f[None, :] * s_x_l, mask=m_f, other=0.0).to(tl.float32)
        x_b = tl.load(x_base + t_b[None, :] * s_x_l, mask=m_b, other=0.0).to(tl.float32)
        w_f = tl.load(w_ptr + offs_e * W + k, mask=mask_e, other=0.0)
        w_b = tl.load(w_ptr + (E + offs_e) * W + k, mask=mask_e, other=0.0)
        acc_f += w_f[:, None] * x_f
        acc_b += w_b[:, None] * x_b
    acc_f += tl.load(b_ptr + offs_e, mask=mask_e, other=0.0)[:, None]
    acc_b += tl.load(b_ptr + E + offs_e, mask=mask_e, other=0.0)[:, None]
    acc_f = acc_f * _sigmoid(acc_f)
    acc_b = acc_b * _sigmoid(acc_b)
    mask = mask_e[:, None] & (offs_l < L)[None, :]
    out_f = u_ptr + pid_b * s_u_b + offs_e[:, None] * s_u_e + offs_l[None, :] * s_u_l
    tl.store(out_f, acc_f.to(u_ptr.dtype.element_ty), mask=mask)
    tl.store(out_f + s_u_d, acc_b.to(u_ptr.dtype.element_ty), mask=mask)


# ------------------------------------------------------------------------------------------------ scan


@triton.jit
def _ssm_step(h, A2, u, dt_raw, bias, Bt, Ct, Dv):
    """One token of one direction for BLOCK_E channels: returns the new state (BLOCK_E, N) and y (BLOCK_E,)."""
    dt = _softplus(dt_raw + bias)
    h = tl.exp2(dt[:, None] * A2) * h + (dt * u)[:, None] * Bt[None, :]
    y = tl.sum(h * Ct[None, :], axis=1) + Dv * u
    return h, y


@triton.jit
def _silu_half(z):
    return z * _sigmoid(z) * 0.5


@triton.jit
def _scan_fwd_kernel(
    u_ptr, dt_ptr, B_ptr, C_ptr, z_ptr, A_ptr, D_ptr, bias_ptr, out_ptr, states_ptr,
    E, L, n_chunks,
    s_u_d, s_u_b, s_u_e, s_u_l,
    s_dt_d, s_dt_b, s_dt_e, s_dt_l,
    s_B_d, s_B_b, s_B_n, s_B_l,
    s_C_d, s_C_b, s_C_n, s_C_l,
    s_z_b, s_z_e, s_z_l,
    s_o_b, s_o_e, s_o_l,
    N: tl.constexpr, BLOCK_E: tl.constexpr, CHUNK: tl.constexpr, STORE_STATES: tl.constexpr,
):
    """One program: BLOCK_E channels of one batch row, both directions, token by token.

    Scan step ``i`` advances the forward state over token ``i`` and the backward state over token
    ``L - 1 - i``; both states (BLOCK_E, N) live in registers for the whole sequence, so each exp is
    taken once. While the two walks have not crossed (``i < L // 2``) each direction parks its ungated
    output in ``out``; once they have, a step reads the other direction's parked value for its token and
    writes ``(y_f + y_b) * silu(z) / 2``. The operands of step ``i + 1`` are loaded during step ``i``.
    With STORE_STATES the state entering each CHUNK-token chunk (in scan order) is written to ``states``
    (2, B, E, n_chunks, N) fp32, what the backward kernel recomputes from.
    """
    pid_e = tl.program_id(0)
    pid_b = tl.program_id(1)
    n_batch = tl.num_programs(1)
    offs_e = pid_e * BLOCK_E + tl.arange(0, BLOCK_E)
    offs_n = tl.arange(0, N)
    mask_e = offs_e < E
    mask_en = mask_e[:, None]

    a_offs = offs_e[:, None] * N + offs_n[None, :]
    A2f = tl.load(A_ptr + a_offs, mask=mask_en, other=0.0) * LOG2E  # exp(dt A) == exp2(dt A log2 e)
    A2b = tl.load(A_ptr + E * N + a_offs, mask=mask_en, other=0.0) * LOG2E
    Df = tl.load(D_ptr + offs_e, mask=mask_e, other=0.0)
    Db = tl.load(D_ptr + E + offs_e, mask=mask_e, other=0.0)
    bias_f = tl.load(bias_ptr + offs_e, mask=mask_e, other=0.0)
    bias_b = tl.load(bias_ptr + E + offs_e, mask=mask_e, other=0.0)

    uf_ptr = u_ptr + pid_b * s_u_b + offs_e * s_u_e
    ub_ptr = uf_ptr + s_u_d
    dtf_ptr = dt_ptr + pid_b * s_dt_b + offs_e * s_dt_e
    dtb_ptr = dtf_ptr + s_dt_d
    Bf_ptr = B_ptr + pid_b * s_B_b + offs_n * s_B_n
    Bb_ptr = Bf_ptr + s_B_d
    Cf_ptr = C_ptr + pid_b * s_C_b + offs_n * s_C_n
    Cb_ptr = Cf_ptr + s_C_d
    z_base = z_ptr + pid_b * s_z_b + offs_e * s_z_e
    o_base = out_ptr + pid_b * s_o_b + offs_e * s_o_e
    st_f = states_ptr + (pid_b * E + offs_e[:, None]) * (n_chunks * N) + offs_n[None, :]
    st_b = st_f + n_batch * E * n_chunks * N
    out_ty = out_ptr.dtype.element_ty

    hf = tl.zeros((BLOCK_E, N), tl.float32)
    hb = tl.zeros((BLOCK_E, N), tl.float32)
    half = L // 2
    # operands of step 0: forward token 0, backward token L - 1
    tb = L - 1
    uf = tl.load(uf_ptr, mask=mask_e, other=0.0).to(tl.float32)
    dtf = tl.load(dtf_ptr, mask=mask_e, other=0.0).to(tl.float32)
    Bf = tl.load(Bf_ptr).to(tl.float32)
    Cf = tl.load(Cf_ptr).to(tl.float32)
    ub = tl.load(ub_ptr + tb * s_u_l, mask=mask_e, other=0.0).to(tl.float32)
    dtb = tl.load(dtb_ptr + tb * s_dt_l, mask=mask_e, other=0.0).to(tl.float32)
    Bb = tl.load(Bb_ptr + tb * s_B_l).to(tl.float32)
    Cb = tl.load(Cb_ptr + tb * s_C_l).to(tl.float32)

    # 1) the walks have not crossed: park ungated outputs
    for i in range(0, half):
        tf = i
        tb = L - 1 - i
        # prefetch step i + 1 (tokens i + 1 and L - 2 - i are in range: i + 1 <= L // 2 <= L - 1)
        uf_n = tl.load(uf_ptr + (tf + 1) * s_u_l, mask=mask_e, other=0.0).to(tl.float32)
        dtf_n = tl.load(dtf_ptr + (tf + 1) * s_dt_l, mask=mask_e, other=0.0).to(tl.float32)
        Bf_n = tl.load(Bf_ptr + (tf + 1) * s_B_l).to(tl.float32)
        Cf_n = tl.load(Cf_ptr + (tf + 1) * s_C_l).to(tl.float32)
        ub_n = tl.load(ub_ptr + (tb - 1) * s_u_l, mask=mask_e, other=0.0).to(tl.float32)
        dtb_n = tl.load(dtb_ptr + (tb - 1) * s_dt_l, mask=mask_e, other=0.0).to(tl.float32)
        Bb_n = tl.load(Bb_ptr + (tb - 1) * s_B_l).to(tl.float32)
        Cb_n = tl.load(Cb_ptr + (tb - 1) * s_C_l).to(tl.float32)
        if STORE_STATES:
            tl.store(st_f + (tf // CHUNK) * N, hf, mask=mask_en & (tf % CHUNK == 0))
            tl.store(st_b + (tb // CHUNK) * N, hb, mask=mask_en & (((tb + 1) % CHUNK == 0) | (tb == L - 1)))
        hf, yf = _ssm_step(hf, A2f, uf, dtf, bias_f, Bf, Cf, Df)
        hb, yb = _ssm_step(hb, A2b, ub, dtb, bias_b, Bb, Cb, Db)
        tl.store(o_base + tf * s_o_l, yf.to(out_ty), mask=mask_e)
        tl.store(o_base + tb * s_o_l, yb.to(out_ty), mask=mask_e)
        uf, dtf, Bf, Cf = uf_n, dtf_n, Bf_n, Cf_n
        ub, dtb, Bb, Cb = ub_n, dtb_n, Bb_n, Cb_n

    # 2) odd L: both walks meet on the middle token
    if L % 2 == 1:
        tm = half
        if STORE_STATES:
            tl.store(st_f + (tm // CHUNK) * N, hf, mask=mask_en & (tm % CHUNK == 0))
            tl.store(st_b + (tm // CHUNK) * N, hb, mask=mask_en & (((tm + 1) % CHUNK == 0) | (tm == L - 1)))
        hf, yf = _ssm_step(hf, A2f, uf, dtf, bias_f, Bf, Cf, Df)
        hb, yb = _ssm_step(hb, A2b, ub, dtb, bias_b, Bb, Cb, Db)
        zm = tl.load(z_base + tm * s_z_l, mask=mask_e, other=0.0).to(tl.float32)
        tl.store(o_base + tm * s_o_l, ((yf + yb) * _silu_half(zm)).to(out_ty), mask=mask_e)
        # operands of the first crossed step
        has_next = tm + 1 < L
        uf = tl.load(uf_ptr + (tm + 1) * s_u_l, mask=mask_e & has_next, other=0.0).to(tl.float32)
        dtf = tl.load(dtf_ptr + (tm + 1) * s_dt_l, mask=mask_e & has_next, other=0.0).to(tl.float32)
        Bf = tl.load(Bf_ptr + (tm + 1) * s_B_l, mask=has_next, other=0.0).to(tl.float32)
        Cf = tl.load(Cf_ptr + (tm + 1) * s_C_l, mask=has_next, other=0.0).to(tl.float32)
        ub = tl.load(ub_ptr + (tm - 1) * s_u_l, mask=mask_e & has_next, other=0.0).to(tl.float32)
        dtb = tl.load(dtb_ptr + (tm - 1) * s_dt_l, mask=mask_e & has_next, other=0.0).to(tl.float32)
        Bb = tl.load(Bb_ptr + (tm - 1) * s_B_l, mask=has_next, other=0.0).to(tl.float32)
        Cb = tl.load(Cb_ptr + (tm - 1) * s_C_l, mask=has_next, other=0.0).to(tl.float32)

    # 3) crossed: every token's other half is parked; the barrier makes phase 1's stores visible
    tl.debug_barrier()
    start = L - half
    tf = start
    tb = L - 1 - start
    has_cur = start < L
    zf = tl.load(z_base + tf * s_z_l, mask=mask_e & has_cur, other=0.0).to(tl.float32)
    zb = tl.load(z_base + tb * s_z_l, mask=mask_e & has_cur, other=0.0).to(tl.float32)
    pf = tl.load(o_base + tf * s_o_l, mask=mask_e & has_cur, other=0.0).to(tl.float32)  # parked y_b
    pb = tl.load(o_base + tb * s_o_l, mask=mask_e & has_cur, other=0.0).to(tl.float32)  # parked y_f
    for i in range(start, L):
        tf = i
        tb = L - 1 - i
        has_next = i + 1 < L
        m_next = mask_e & has_next
        uf_n = tl.load(uf_ptr + (tf + 1) * s_u_l, mask=m_next, other=0.0).to(tl.float32)
        dtf_n = tl.load(dtf_ptr + (tf + 1) * s_dt_l, mask=m_next, other=0.0).to(tl.float32)
        Bf_n = tl.load(Bf_ptr + (tf + 1) * s_B_l, mask=has_next, other=0.0).to(tl.float32)
        Cf_n = tl.load(Cf_ptr + (tf + 1) * s_C_l, mask=has_next, other=0.0).to(tl.float32)
        ub_n = tl.load(ub_ptr + (tb - 1) * s_u_l, mask=m_next, other=0.0).to(tl.float32)
        dtb_n = tl.load(dtb_ptr + (tb - 1) * s_dt_l, mask=m_next, other=0.0).to(tl.float32)
        Bb_n = tl.load(Bb_ptr + (tb - 1) * s_B_l, mask=has_next, other=0.0).to(tl.float32)
        Cb_n = tl.load(Cb_ptr + (tb - 1) * s_C_l, mask=has_next, other=0.0).to(tl.float32)
        zf_n = tl.load(z_base + (tf + 1) * s_z_l, mask=m_next, other=0.0).to(tl.float32)
        zb_n = tl.load(z_base + (tb - 1) * s_z_l, mask=m_next, other=0.0).to(tl.float32)
        pf_n = tl.load(o_base + (tf + 1) * s_o_l, mask=m_next, other=0.0).to(tl.float32)
        pb_n = tl.load(o_base + (tb - 1) * s_o_l, mask=m_next, other=0.0).to(tl.float32)
        if STORE_STATES:
            tl.store(st_f + (tf // CHUNK) * N, hf, mask=mask_en & (tf % CHUNK == 0))
            tl.store(st_b + (tb // CHUNK) * N, hb, mask=mask_en & (((tb + 1) % CHUNK == 0) | (tb == L - 1)))
        hf, yf = _ssm_step(hf, A2f, uf, dtf, bias_f, Bf, Cf, Df)
        hb, yb = _ssm_step(hb, A2b, ub, dtb, bias_b, Bb, Cb, Db)
        tl.store(o_base + tf * s_o_l, ((yf + pf) * _silu_half(zf)).to(out_ty), mask=mask_e)
        tl.store(o_base + tb * s_o_l, ((yb + pb) * _silu_half(zb)).to(out_ty), mask=mask_e)
        uf, dtf, Bf, Cf, zf, pf = uf_n, dtf_n, Bf_n, Cf_n, zf_n, pf_n
        ub, dtb, Bb, Cb, zb, pb = ub_n, dtb_n, Bb_n, Cb_n, zb_n, pb_n


@triton.jit
def _scan_bwd_kernel(
    u_ptr, dt_ptr, B_ptr, C_ptr, z_ptr, A_ptr, D_ptr, bias_ptr, states_ptr, dout_ptr,
    du_ptr, ddt_ptr, dB_ptr, dC_ptr, dz_ptr, dA_ptr, dD_ptr, dbias_ptr,
    E, L, n_chunks,
    s_u_d, s_u_b, s_u_e, s_u_l,
    s_dt_d, s_dt_b, s_dt_e, s_dt_l,
    s_B_d, s_B_b, s_B_n, s_B_l,
    s_C_d, s_C_b, s_C_n, s_C_l,
    s_z_b, s_z_e, s_z_l,
    s_g_b, s_g_e, s_g_l,
    N: tl.constexpr, BLOCK_E: tl.constexpr, CHUNK: tl.constexpr,
):
    """Gradients of the fused scan; same program grid as the forward, chunks visited in reverse scan order.

    Per chunk the states are recomputed from the saved chunk-entry state, then
    ``dh_t = C_t dy_t + a_{t+1} dh_{t+1}`` (``t + 1`` = next scan step) is a reverse scan whose carry is
    the dh of the following chunk. ``a_{t+1} h_t`` is never divided out: ``a_t h_{t-1} = h_t - b_t``.
    du, ddt (raw dt, before bias/softplus) are written; dB, dC, dz, dA, dD, dbias are fp32 sums (atomics).
    """
    pid_e = tl.program_id(0)
    pid_b = tl.program_id(1)
    d = tl.program_id(2)
    n_batch = tl.num_programs(1)
    offs_e = pid_e * BLOCK_E + tl.arange(0, BLOCK_E)
    offs_n = tl.arange(0, N)
    offs_s = tl.arange(0, CHUNK)
    mask_e = offs_e < E
    local_t = offs_s + d * (CHUNK - 1 - 2 * offs_s)
    step = 1 - 2 * d  # time offset of the next scan step

    A_nat = tl.load(A_ptr + (d * E + offs_e[:, None]) * N + offs_n[None, :], mask=mask_e[:, None], other=0.0)
    A = A_nat * LOG2E
    Dv = tl.load(D_ptr + d * E + offs_e, mask=mask_e, other=0.0)
    bias = tl.load(bias_ptr + d * E + offs_e, mask=mask_e, other=0.0)

    u_base = u_ptr + d * s_u_d + pid_b * s_u_b + offs_e[:, None] * s_u_e
    dt_base = dt_ptr + d * s_dt_d + pid_b * s_dt_b + offs_e[:, None] * s_dt_e
    B_base = B_ptr + d * s_B_d + pid_b * s_B_b + offs_n[None, :] * s_B_n
    C_base = C_ptr + d * s_C_d + pid_b * s_C_b + offs_n[None, :] * s_C_n
    z_base = z_ptr + pid_b * s_z_b + offs_e[:, None] * s_z_e
    g_base = dout_ptr + pid_b * s_g_b + offs_e[:, None] * s_g_e
    st_base = states_ptr + ((d * n_batch + pid_b) * E + offs_e[:, None]) * (n_chunks * N) + offs_n[None, :]
    # our own contiguous outputs
    dude_base = ((d * n_batch + pid_b) * E + offs_e[:, None]) * L  # du, ddt: (2, B, E, L)
    dBC_base = ((d * n_batch + pid_b) * N + offs_n[None, :]) * L  # dB, dC: (2, B, N, L)
    dz_base = dz_ptr + (pid_b * E + offs_e[:, None]) * L

    dh_next = tl.zeros((BLOCK_E, N), tl.float32)  # dh at the first scan step of the chunk visited before
    dA_acc = tl.zeros((BLOCK_E, N), tl.float32)
    dD_acc = tl.zeros((BLOCK_E,), tl.float32)
    dbias_acc = tl.zeros((BLOCK_E,), tl.float32)
    for i in range(n_chunks):
        c = n_chunks - 1 - i
        chunk = c + d * (n_chunks - 1 - 2 * c)
        t = chunk * CHUNK + local_t
        mask_t = t < L
        mask = mask_e[:, None] & mask_t[None, :]
        t_next = t + step
        mask_next = mask_e[:, None] & ((t_next >= 0) & (t_next < L))[None, :]

        u = tl.load(u_base + t[None, :] * s_u_l, mask=mask, other=0.0).to(tl.float32)
        dt_raw = tl.load(dt_base + t[None, :] * s_dt_l, mask=mask, other=0.0).to(tl.float32) + bias[:, None]
        dt = tl.where(mask, _softplus(dt_raw), 0.0)
        dt_next = tl.load(dt_base + t_next[None, :] * s_dt_l, mask=mask_next, other=0.0).to(tl.float32)
        dt_next = tl.where(mask_next, _softplus(dt_next + bias[:, None]), 0.0)
        Bt = tl.load(B_base + t[:, None] * s_B_l, mask=mask_t[:, None], other=0.0).to(tl.float32)
        Ct = tl.load(C_base + t[:, None] * s_C_l, mask=mask_t[:, None], other=0.0).to(tl.float32)
        zz = tl.load(z_base + t[None, :] * s_z_l, mask=mask, other=0.0).to(tl.float32)
        g = tl.load(g_base + t[None, :] * s_g_l, mask=mask, other=0.0).to(tl.float32)

        # recompute the states of this chunk
        h0 = tl.load(st_base + chunk * N, mask=mask_e[:, None], other=0.0)
        decay = tl.exp2(dt[:, :, None] * A[:, None, :])
        inp = (dt * u)[:, :, None] * Bt[None, :, :]
        acc_a, acc_b = tl.associative_scan((decay, inp), axis=1, combine_fn=_recurrence)
        hs = acc_a * h0[:, None, :] + acc_b
        y = tl.sum(hs * Ct[None, :, :], axis=2) + Dv[:, None] * u

        sig_z = _sigmoid(zz)
        dy = g * zz * sig_z * 0.5
        # d/dz of silu(z) = sig (1 + z (1 - sig)); the other direction adds its y the same way
        dz = g * 0.5 * y * sig_z * (1.0 + zz * (1.0 - sig_z))
        tl.atomic_add(dz_base + t[None, :], dz, mask=mask, sem="relaxed")

        # reverse scan for dh, seeded by the following chunk
        decay_next = tl.exp2(dt_next[:, :, None] * A[:, None, :])
        src = Ct[None, :, :] * dy[:, :, None]
        rev_a, rev_b = tl.associative_scan((decay_next, src), axis=1, combine_fn=_recurrence, reverse=True)
        dh = rev_b + rev_a * dh_next[:, None, :]
        dh_next = tl.sum(tl.where((offs_s == 0)[None, :, None], dh, 0.0), axis=1)

        d_log_decay = dh * (hs - inp)  # dL/d(dt A) = dh_t * a_t * h_{t-1}
        dA_acc += tl.sum(d_log_decay * dt[:, :, None], axis=1)
        dh_B = tl.sum(dh * Bt[None, :, :], axis=2)  # (BLOCK_E, CHUNK)
        ddt = tl.sum(d_log_decay * A_nat[:, None, :], axis=2) + u * dh_B
        ddt_raw = tl.where(mask, ddt * _sigmoid(dt_raw), 0.0)
        du = dt * dh_B + Dv[:, None] * dy
        dD_acc += tl.sum(dy * u, axis=1)
        dbias_acc += tl.sum(ddt_raw, axis=1)
        tl.store(du_ptr + dude_base + t[None, :], du.to(du_ptr.dtype.element_ty), mask=mask)
        tl.store(ddt_ptr + dude_base + t[None, :], ddt_raw.to(ddt_ptr.dtype.element_ty), mask=mask)

        dB = tl.sum(dh * (dt * u)[:, :, None], axis=0)  # (CHUNK, N): sum over this program's channels
        dC = tl.sum(hs * dy[:, :, None], axis=0)
        tl.atomic_add(dB_ptr + dBC_base + t[:, None], dB, mask=mask_t[:, None], sem="relaxed")
        tl.atomic_add(dC_ptr + dBC_base + t[:, None], dC, mask=mask_t[:, None], sem="relaxed")

    tl.atomic_add(dA_ptr + (d * E + offs_e[:, None]) * N + offs_n[None, :], dA_acc, mask=mask_e[:, None], sem="relaxed")
    tl.atomic_add(dD_ptr + d * E + offs_e, dD_acc, mask=mask_e, sem="relaxed")
    tl.atomic_add(dbias_ptr + d * E + offs_e, dbias_acc, mask=mask_e, sem="relaxed")


# ------------------------------------------------------------------------------------------ add + norm


@triton.jit
def _add_rmsnorm_fwd_kernel(
    x_ptr, res_ptr, w_ptr, out_ptr, res_out_ptr, rstd_ptr, M, D, eps,
    HAS_RESIDUAL: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """res_out = res + x (fp32); out = res_out * rsqrt(mean(res_out^2) + eps) * w, rows of D contiguous."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.arange(0, BLOCK_D)
    mask_m = rows < M
    mask = mask_m[:, None] & (cols < D)[None, :]
    offs = rows[:, None] * D + cols[None, :]
    r = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    if HAS_RESIDUAL:
        r += tl.load(res_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    tl.store(res_out_ptr + offs, r, mask=mask)
    rstd = 1.0 / tl.sqrt(tl.sum(r * r, axis=1) / D + eps)
    w = tl.load(w_ptr + cols, mask=cols < D, other=0.0).to(tl.float32)
    tl.store(out_ptr + offs, (r * rstd[:, None] * w[None, :]).to(out_ptr.dtype.element_ty), mask=mask)
    tl.store(rstd_ptr + rows, rstd, mask=mask_m)
