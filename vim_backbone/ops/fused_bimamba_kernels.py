"""Triton kernels of the fused bidirectional scan (see :mod:`vim_backbone.ops.fused_bimamba`).

Layouts (logical shapes; any strides, the fused op allocates its activations channels-last):
  x, z          (B, E, L)       the mixer input after in_proj (views of its (B, L, 2E) output)
  u, dt         (2, B, E, L)    per direction (0 = forward, 1 = backward) conv+silu output / raw dt
  Bm, Cm        (2, B, N, L)    strided views into the x_proj output (2, B, L, R + 2N)
  A             (2, E, N) fp32  A = -exp(A_log);  D, dt_bias (2, E) fp32

The backward direction is the forward recipe applied to the flipped sequence, expressed in the original
order: an anti-causal conv with the taps reversed, and a scan that runs from t = L - 1 down to 0. The
forward kernel walks the tokens one at a time (optionally in segments, with a pass for the segment
states); the default backward (``_scan_bwd_walk_kernel``, with ``_scan_bwd_seg_kernel`` when segmented)
walks them back chunk by chunk; the other backward (``_scan_bwd_kernel``) works on chunks of CHUNK tokens
with ``tl.associative_scan``, in which scan step ``s`` of a chunk is time ``s`` (forward) or
``CHUNK - 1 - s`` (backward). The conv has a forward kernel and two backward ones. Kernels take a FAST
constexpr: approximate exp2 / log2 / reciprocal PTX when compiled, plain ``tl`` math under the
interpreter.
"""
import triton
import triton.language as tl

LOG2E = tl.constexpr(1.4426950408889634)  # globals used inside kernels must be constexpr
LN2 = tl.constexpr(0.6931471805599453)


@triton.jit
def _ptx_f32(x, ASM: tl.constexpr):
    # one fp32 PTX instruction per element (compiled code only: the interpreter has no PTX)
    return tl.inline_asm_elementwise(ASM, "=r,r", [x], dtype=tl.float32, is_pure=True, pack=1)


@triton.jit
def _exp2(x, FAST: tl.constexpr):
    # FAST: one MUFU.EX2 with denormals flushed; else tl.exp2, which adds a rescale around the MUFU for
    # inputs below -126
    if FAST:
        return _ptx_f32(x, "ex2.approx.ftz.f32 $0, $1;")
    else:
        return tl.exp2(x)


@triton.jit
def _log2(x, FAST: tl.constexpr):
    # FAST: one MUFU.LG2 (relative error ~2^-22) instead of libdevice's polynomial log (~20 instructions)
    if FAST:
        return _ptx_f32(x, "lg2.approx.ftz.f32 $0, $1;")
    else:
        return tl.log2(x)


@triton.jit
def _rcp(x, FAST: tl.constexpr):
    if FAST:
        return _ptx_f32(x, "rcp.approx.ftz.f32 $0, $1;")
    else:
        return 1.0 / x


@triton.jit
def _softplus(x, FAST: tl.constexpr):
    # torch.nn.functional.softplus with threshold 20; exp(-|x|) keeps the log argument in [1, 2]
    return tl.where(x > 20.0, x, tl.maximum(x, 0.0) + _log2(1.0 + _exp2(-tl.abs(x) * LOG2E, FAST), FAST) * LN2)


@triton.jit
def _sigmoid(x, FAST: tl.constexpr):
    return _rcp(1.0 + _exp2(-x * LOG2E, FAST), FAST)


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
    W: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_L: tl.constexpr, FAST: tl.constexpr,
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
    acc_f = acc_f * _sigmoid(acc_f, FAST)
    acc_b = acc_b * _sigmoid(acc_b, FAST)
    mask = mask_e[:, None] & (offs_l < L)[None, :]
    out_f = u_ptr + pid_b * s_u_b + offs_e[:, None] * s_u_e + offs_l[None, :] * s_u_l
    tl.store(out_f, acc_f.to(u_ptr.dtype.element_ty), mask=mask)
    tl.store(out_f + s_u_d, acc_b.to(u_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _conv_tap(x_base, s_x_l, offs_l, mask_e, L, k, W: tl.constexpr, BACKWARD: tl.constexpr):
    """x under tap ``k`` for tokens ``offs_l``, fp32, zero outside [0, L): the forward direction's tap k
    reads x[t - (W - 1) + k], the backward's (taps reversed, anti-causal) x[t + (W - 1) - k]."""
    t = offs_l + (W - 1) - k if BACKWARD else offs_l - (W - 1) + k
    return tl.load(x_base + t[None, :] * s_x_l, mask=mask_e[:, None] & ((t >= 0) & (t < L))[None, :],
                   other=0.0).to(tl.float32)


@triton.jit
def _conv_bwd_pre_kernel(
    x_ptr, w_ptr, b_ptr, gu_ptr, gp_ptr, gw_ptr, gb_ptr,
    E, L,
    s_x_b, s_x_e, s_x_l,
    s_g_d, s_g_b, s_g_e, s_g_l,
    s_p_d, s_p_b, s_p_e, s_p_l,
    W: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_L: tl.constexpr, TILES: tl.constexpr, FAST: tl.constexpr,
):
    """Conv backward, step 1: ``gp[d] = gu[d] * silu'(pre[d])`` (pre recomputed from x), fp32, and the
    weight / bias gradients ``gw[d, e, k] += sum_t gp[d] x[tap k]``, ``gb[d, e] += sum_t gp[d]``. A program
    takes TILES token tiles of BLOCK_L one after another, keeps the products elementwise in registers and sums
    them over its tokens once at the end (atomics over the programs along L and the batch): the sums over a
    tile's tokens cross lanes and warps, which cost more than the tile's arithmetic when taken every tile.
    ``silu'(p) = sig(p) (1 + p (1 - sig(p)))``. W <= 4 (the widths causal-conv1d supports).
    """
    tl.static_assert(W <= 4)
    pid_l = tl.program_id(0)
    pid_e = tl.program_id(1)
    pid_b = tl.program_id(2)
    offs_e = pid_e * BLOCK_E + tl.arange(0, BLOCK_E)
    mask_e = offs_e < E
    x_base = x_ptr + pid_b * s_x_b + offs_e[:, None] * s_x_e
    for d in tl.static_range(2):
        bias = tl.load(b_ptr + d * E + offs_e, mask=mask_e, other=0.0)[:, None]
        w_row = w_ptr + (d * E + offs_e) * W
        w0 = tl.load(w_row, mask=mask_e, other=0.0)[:, None]
        w1 = tl.load(w_row + 1, mask=mask_e & (W > 1), other=0.0)[:, None]
        w2 = tl.load(w_row + 2, mask=mask_e & (W > 2), other=0.0)[:, None]
        w3 = tl.load(w_row + 3, mask=mask_e & (W > 3), other=0.0)[:, None]
        acc_b = tl.zeros((BLOCK_E, BLOCK_L), tl.float32)
        acc_0 = tl.zeros((BLOCK_E, BLOCK_L), tl.float32)
        acc_1 = tl.zeros((BLOCK_E, BLOCK_L), tl.float32)
        acc_2 = tl.zeros((BLOCK_E, BLOCK_L), tl.float32)
        acc_3 = tl.zeros((BLOCK_E, BLOCK_L), tl.float32)
        for i in range(TILES):
            offs_l = (pid_l * TILES + i) * BLOCK_L + tl.arange(0, BLOCK_L)
            mask = mask_e[:, None] & (offs_l < L)[None, :]
            x0 = _conv_tap(x_base, s_x_l, offs_l, mask_e, L, 0, W, d == 1)
            pre = bias + w0 * x0
            x1 = x0
            x2 = x0
            x3 = x0
            if W > 1:
                x1 = _conv_tap(x_base, s_x_l, offs_l, mask_e, L, 1, W, d == 1)
                pre += w1 * x1
            if W > 2:
                x2 = _conv_tap(x_base, s_x_l, offs_l, mask_e, L, 2, W, d == 1)
                pre += w2 * x2
            if W > 3:
                x3 = _conv_tap(x_base, s_x_l, offs_l, mask_e, L, 3, W, d == 1)
                pre += w3 * x3
            sig = _sigmoid(pre, FAST)
            gu = tl.load(gu_ptr + d * s_g_d + pid_b * s_g_b + offs_e[:, None] * s_g_e + offs_l[None, :] * s_g_l,
                         mask=mask, other=0.0).to(tl.float32)
            gp = gu * sig * (1.0 + pre * (1.0 - sig))  # zero outside the tile's valid part (gu = 0 there)
            tl.store(gp_ptr + d * s_p_d + pid_b * s_p_b + offs_e[:, None] * s_p_e + offs_l[None, :] * s_p_l, gp,
                     mask=mask)
            acc_b += gp
            acc_0 += gp * x0
            acc_1 += gp * x1
            acc_2 += gp * x2
            acc_3 += gp * x3
        gw_row = gw_ptr + (d * E + offs_e) * W
        tl.atomic_add(gb_ptr + d * E + offs_e, tl.sum(acc_b, axis=1), mask=mask_e, sem="relaxed")
        tl.atomic_add(gw_row, tl.sum(acc_0, axis=1), mask=mask_e, sem="relaxed")
        tl.atomic_add(gw_row + 1, tl.sum(acc_1, axis=1), mask=mask_e & (W > 1), sem="relaxed")
        tl.atomic_add(gw_row + 2, tl.sum(acc_2, axis=1), mask=mask_e & (W > 2), sem="relaxed")
        tl.atomic_add(gw_row + 3, tl.sum(acc_3, axis=1), mask=mask_e & (W > 3), sem="relaxed")


@triton.jit
def _conv_bwd_x_kernel(
    gp_ptr, w_ptr, gx_ptr, dz0_ptr, dz1_ptr, gz_ptr,
    E, L,
    s_p_d, s_p_b, s_p_e, s_p_l,
    s_x_b, s_x_e, s_x_l,
    s_dz_b, s_dz_e, s_dz_l,
    s_z_b, s_z_e, s_z_l,
    W: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_L: tl.constexpr, DZ_TERMS: tl.constexpr,
):
    """Conv backward, step 2: ``gx[s] = sum_k w[0, k] gp[0, s + W - 1 - k] + w[1, k] gp[1, s - (W - 1) + k]``
    (the transposed taps of both directions), written in gx's dtype and strides. With DZ_TERMS (1 or 2) the same
    tile of z's gradient too, ``gz = dz0 (+ dz1)`` (the scan's fp32 terms, same strides) in gz's dtype: the mixer's
    two gradients land in one (B, L, 2E) tensor, and the sum then costs no launch and no pass of its own."""
    pid_l = tl.program_id(0)
    pid_e = tl.program_id(1)
    pid_b = tl.program_id(2)
    offs_e = pid_e * BLOCK_E + tl.arange(0, BLOCK_E)
    offs_l = pid_l * BLOCK_L + tl.arange(0, BLOCK_L)
    mask_e = offs_e < E
    mask = mask_e[:, None] & (offs_l < L)[None, :]
    if DZ_TERMS > 0:  # loads first: in flight while the taps are summed
        dz_off = pid_b * s_dz_b + offs_e[:, None] * s_dz_e + offs_l[None, :] * s_dz_l
        dz = tl.load(dz0_ptr + dz_off, mask=mask, other=0.0)
        if DZ_TERMS > 1:
            dz += tl.load(dz1_ptr + dz_off, mask=mask, other=0.0)
    acc = tl.zeros((BLOCK_E, BLOCK_L), tl.float32)
    for d in tl.static_range(2):
        base = gp_ptr + d * s_p_d + pid_b * s_p_b + offs_e[:, None] * s_p_e
        for k in tl.static_range(W):
            t = offs_l + (W - 1) - k if d == 0 else offs_l - (W - 1) + k
            g = tl.load(base + t[None, :] * s_p_l, mask=mask_e[:, None] & ((t >= 0) & (t < L))[None, :], other=0.0)
            acc += tl.load(w_ptr + (d * E + offs_e) * W + k, mask=mask_e, other=0.0)[:, None] * g
    tl.store(gx_ptr + pid_b * s_x_b + offs_e[:, None] * s_x_e + offs_l[None, :] * s_x_l,
             acc.to(gx_ptr.dtype.element_ty), mask=mask)
    if DZ_TERMS > 0:
        tl.store(gz_ptr + pid_b * s_z_b + offs_e[:, None] * s_z_e + offs_l[None, :] * s_z_l,
                 dz.to(gz_ptr.dtype.element_ty), mask=mask)


# ------------------------------------------------------------------------------------------------ scan


@triton.jit
def _silu_half(z, FAST: tl.constexpr):
    return z * _sigmoid(z, FAST) * 0.5


@triton.jit
def _walk_pointers(u_ptr, dt_ptr, B_ptr, C_ptr, z_ptr, d, pid_b, offs_e, offs_n,
                   s_u_d, s_u_b, s_u_e, s_dt_d, s_dt_b, s_dt_e, s_B_d, s_B_b, s_B_n, s_C_d, s_C_b, s_C_n,
                   s_z_b, s_z_e):
    """Per-token base pointers of a walk (direction ``d``, batch row ``pid_b``): add ``t * s_*_l``."""
    return (u_ptr + d * s_u_d + pid_b * s_u_b + offs_e * s_u_e, dt_ptr + d * s_dt_d + pid_b * s_dt_b + offs_e * s_dt_e,
            B_ptr + d * s_B_d + pid_b * s_B_b + offs_n * s_B_n, C_ptr + d * s_C_d + pid_b * s_C_b + offs_n * s_C_n,
            z_ptr + pid_b * s_z_b + offs_e * s_z_e)


@triton.jit
def _token_load(u_ptr, dt_ptr, B_ptr, C_ptr, z_ptr, s_u_l, s_dt_l, s_B_l, s_C_l, s_z_l, t, L,
                LOAD_C: tl.constexpr, LOAD_Z: tl.constexpr):
    """Operands of token ``t`` for BLOCK_E channels, fp32 (converted here: sm_90 code converting at the
    use took more instructions in both passes, and 5 registers fewer only in the output pass).

    Loads are never masked (a masked load costs a zeroing and a predicate per register): ``t`` is clamped
    into [0, L) and the caller clamps the channel pointers to the last channel; steps outside the walk
    are no-ops in ``_token_step``. C is loaded with LOAD_C and z with LOAD_Z (else ``B`` and ``u`` stand
    in for them): the forward's segment-state pass needs neither, its output pass C only.
    """
    t = tl.minimum(tl.maximum(t, 0), L - 1)
    u = tl.load(u_ptr + t * s_u_l).to(tl.float32)
    dt = tl.load(dt_ptr + t * s_dt_l).to(tl.float32)
    Bt = tl.load(B_ptr + t * s_B_l).to(tl.float32)
    Ct = Bt
    z = u
    if LOAD_C:
        Ct = tl.load(C_ptr + t * s_C_l).to(tl.float32)
    if LOAD_Z:
        z = tl.load(z_ptr + t * s_z_l).to(tl.float32)
    return u, dt, Bt, Ct, z


@triton.jit
def _token_step(h, dt_sum, A2, bias, Dv, u, dt_raw, Bt, Ct, t, valid, d, L, y_ptr, s_y_l, st_ptr, mask_e,
                N: tl.constexpr, CHUNK: tl.constexpr, STORE_STATES: tl.constexpr, WRITE_Y: tl.constexpr,
                FAST: tl.constexpr):
    """Advance the state (N, BLOCK_E) over token ``t``; with WRITE_Y store ``y = C h + D u``.

    A no-op unless ``valid``. Also returns ``dt_sum`` + this token's dt (the segment's total step).
    """
    if STORE_STATES:
        # the state entering each chunk in scan order: forward before t = c CHUNK, backward before
        # t = min(L, (c + 1) CHUNK) - 1
        entry = (((t + d) % CHUNK) == 0) | ((d == 1) & (t == L - 1))
        tl.store(st_ptr + (t // CHUNK) * N, h, mask=mask_e[None, :] & (valid & entry))
    dt = tl.where(valid, _softplus(dt_raw + bias, FAST), 0.0)  # invalid: decay 1, input 0
    h = _exp2(dt[None, :] * A2, FAST) * h + Bt[:, None] * (dt * u)[None, :]
    if WRITE_Y:
        y = tl.sum(h * Ct[:, None], axis=0) + Dv * u
        tl.store(y_ptr + t * s_y_l, y.to(y_ptr.dtype.element_ty), mask=mask_e & valid)
    return h, dt_sum + dt


@triton.jit
def _scan_fwd_kernel(
    u_ptr, dt_ptr, B_ptr, C_ptr, A_ptr, D_ptr, bias_ptr, y_ptr, states_ptr, seg_h_ptr, seg_dt_ptr,
    E, L, n_chunks, seg_len, sub_len, seg_first, seg_progs,
    s_A_d, s_A_e, s_A_n,
    s_u_d, s_u_b, s_u_e, s_u_l,
    s_dt_d, s_dt_b, s_dt_e, s_dt_l,
    s_B_d, s_B_b, s_B_n, s_B_l,
    s_C_d, s_C_b, s_C_n, s_C_l,
    s_y_d, s_y_b, s_y_e, s_y_l,
    N: tl.constexpr, BLOCK_E: tl.constexpr, CHUNK: tl.constexpr, STORE_STATES: tl.constexpr,
    SEGMENTS: tl.constexpr, SUB: tl.constexpr, WRITE_Y: tl.constexpr, FAST: tl.constexpr,
    HEAD: tl.constexpr = False,
):
    """One program: BLOCK_E channels of one batch row, one direction, one segment of the walk.

    Direction 0 walks t = 0 .. L - 1, direction 1 t = L - 1 .. 0. The walk (L steps) is cut into
    SEGMENTS runs of ``seg_len`` steps so that short batches still fill the GPU. With SEGMENTS > 1 the
    kernel runs twice: first without WRITE_Y, over the pieces of ``sub_len = seg_len / SUB`` steps that
    lie before the last segment ((SEGMENTS - 1) SUB programs a walk: the state pass carries no outputs,
    so it has the registers for more, shorter programs), each piece from a zero state, writing its end
    state (``seg_h``, (2, B, E, SEGMENTS SUB, N) fp32) and its total step (``seg_dt``,
    (2, B, E, SEGMENTS SUB)); then with WRITE_Y, where segment s starts from
    ``h_j = exp(A sum dt_{j-1}) h_{j-1} + seg_h_{j-1}`` composed over the s SUB pieces before it (decays
    compose: exp(A a) exp(A b) = exp(A (a + b))). With HEAD, segment 0 needs no state pass: its output
    walk (launched beside the state pass of the pieces of segments 1 .. SEGMENTS - 2) writes its end state
    and total step to the slot of its last piece, and later segments compose the summaries from that slot
    on. The state (N, BLOCK_E) stays in registers along the walk, so the exps are taken once per pass, and
    the direction's output ``C h + D u`` goes to ``y[d]`` (2, B, E, L); ``_gate_sum_kernel`` gates and sums
    the two. Steps run four per loop iteration with four operand sets: the loads of step ``i + 4`` are issued right after
    step ``i`` consumed its set, so a load has three steps of work to arrive and no register copy waits on
    it at the loop's end. With STORE_STATES the state entering each CHUNK-token chunk (in scan order) is
    written to ``states`` (2, B, E, n_chunks, N) fp32, what the backward kernel recomputes from.
    """
    pid_e = tl.program_id(0)
    pid_b = tl.program_id(1)
    # a launch runs seg_progs segments (WRITE_Y) or pieces of sub_len steps (state pass) of each direction,
    # from seg_first on
    d = tl.program_id(2) // seg_progs
    seg = seg_first + tl.program_id(2) % seg_progs
    n_batch = tl.num_programs(1)
    offs_e = pid_e * BLOCK_E + tl.arange(0, BLOCK_E)
    offs_n = tl.arange(0, N)
    mask_e = offs_e < E

    # the state tile is (N, BLOCK_E); the memory order of A (strides s_A_e, s_A_n) steers the layout the
    # compiler gives it. Compiled for sm_90 (tools/fused_sass_stats.py): read with the states contiguous,
    # the output pass keeps A in the layout of the state and its token loop moves no (N, BLOCK_E) tile
    # through shared memory (it did, once a token, with the channels contiguous); the state pass is the
    # other way round, without shared-memory traffic in its loop only with the channels contiguous
    A2 = tl.load(A_ptr + d * s_A_d + offs_e[None, :] * s_A_e + offs_n[:, None] * s_A_n, mask=mask_e[None, :],
                 other=0.0) * LOG2E
    Dv = tl.load(D_ptr + d * E + offs_e, mask=mask_e, other=0.0)
    bias = tl.load(bias_ptr + d * E + offs_e, mask=mask_e, other=0.0)

    offs_e_ld = tl.minimum(offs_e, E - 1)  # loads stay in bounds unmasked; stores use mask_e
    u_p = u_ptr + d * s_u_d + pid_b * s_u_b + offs_e_ld * s_u_e
    dt_p = dt_ptr + d * s_dt_d + pid_b * s_dt_b + offs_e_ld * s_dt_e
    B_p = B_ptr + d * s_B_d + pid_b * s_B_b + offs_n * s_B_n
    C_p = C_ptr + d * s_C_d + pid_b * s_C_b + offs_n * s_C_n
    y_p = y_ptr + d * s_y_d + pid_b * s_y_b + offs_e * s_y_e
    st_p = states_ptr + ((d * n_batch + pid_b) * E + offs_e[None, :]) * (n_chunks * N) + offs_n[:, None]
    seg_row = (d * n_batch + pid_b) * E + offs_e  # (BLOCK_E,) rows of seg_dt; seg_h adds the N axis
    seg_h_p = seg_h_ptr + seg_row[None, :] * (SEGMENTS * SUB * N) + offs_n[:, None]
    seg_dt_p = seg_dt_ptr + seg_row * (SEGMENTS * SUB)

    h = tl.zeros((N, BLOCK_E), tl.float32)
    if WRITE_Y:
        if SEGMENTS > 1:
            # the state entering this segment, from the earlier pieces' summaries (with HEAD, segment 0's is
            # one, its end state, in the slot of its last piece)
            for j in range((SUB - 1) if HEAD else 0, seg * SUB):
                h = _exp2(A2 * tl.load(seg_dt_p + j, mask=mask_e, other=0.0)[None, :], FAST) * h + \
                    tl.load(seg_h_p + j * N, mask=mask_e[None, :], other=0.0)
    dt_sum = tl.zeros((BLOCK_E,), tl.float32)

    if WRITE_Y:
        i_begin = seg * seg_len
        i_end = tl.minimum(L, i_begin + seg_len)
    else:
        i_begin = seg * sub_len
        i_end = tl.minimum(L, i_begin + sub_len)
    t0 = d * (L - 1)  # token of step i: t0 + i * step
    step = 1 - 2 * d
    ta = t0 + i_begin * step
    # no z: u stands in for its pointer and stride (never loaded)
    u0, dt0, B0, C0, _ = _token_load(u_p, dt_p, B_p, C_p, u_p, s_u_l, s_dt_l, s_B_l, s_C_l, s_u_l, ta, L,
                                     WRITE_Y, False)
    u1, dt1, B1, C1, _ = _token_load(u_p, dt_p, B_p, C_p, u_p, s_u_l, s_dt_l, s_B_l, s_C_l, s_u_l, ta + step, L,
                                     WRITE_Y, False)
    u2, dt2, B2, C2, _ = _token_load(u_p, dt_p, B_p, C_p, u_p, s_u_l, s_dt_l, s_B_l, s_C_l, s_u_l, ta + 2 * step,
                                     L, WRITE_Y, False)
    u3, dt3, B3, C3, _ = _token_load(u_p, dt_p, B_p, C_p, u_p, s_u_l, s_dt_l, s_B_l, s_C_l, s_u_l, ta + 3 * step,
                                     L, WRITE_Y, False)
    for i in range(i_begin, i_end, 4):
        t = t0 + i * step
        h, dt_sum = _token_step(h, dt_sum, A2, bias, Dv, u0, dt0, B0, C0, t, i < i_end, d, L, y_p, s_y_l, st_p,
                                mask_e, N, CHUNK, STORE_STATES, WRITE_Y, FAST)
        u0, dt0, B0, C0, _ = _token_load(u_p, dt_p, B_p, C_p, u_p, s_u_l, s_dt_l, s_B_l, s_C_l, s_u_l,
                                         t + 4 * step, L, WRITE_Y, False)
        h, dt_sum = _token_step(h, dt_sum, A2, bias, Dv, u1, dt1, B1, C1, t + step, i + 1 < i_end, d, L, y_p,
                                s_y_l, st_p, mask_e, N, CHUNK, STORE_STATES, WRITE_Y, FAST)
        u1, dt1, B1, C1, _ = _token_load(u_p, dt_p, B_p, C_p, u_p, s_u_l, s_dt_l, s_B_l, s_C_l, s_u_l,
                                         t + 5 * step, L, WRITE_Y, False)
        h, dt_sum = _token_step(h, dt_sum, A2, bias, Dv, u2, dt2, B2, C2, t + 2 * step, i + 2 < i_end, d, L,
                                y_p, s_y_l, st_p, mask_e, N, CHUNK, STORE_STATES, WRITE_Y, FAST)
        u2, dt2, B2, C2, _ = _token_load(u_p, dt_p, B_p, C_p, u_p, s_u_l, s_dt_l, s_B_l, s_C_l, s_u_l,
                                         t + 6 * step, L, WRITE_Y, False)
        h, dt_sum = _token_step(h, dt_sum, A2, bias, Dv, u3, dt3, B3, C3, t + 3 * step, i + 3 < i_end, d, L,
                                y_p, s_y_l, st_p, mask_e, N, CHUNK, STORE_STATES, WRITE_Y, FAST)
        u3, dt3, B3, C3, _ = _token_load(u_p, dt_p, B_p, C_p, u_p, s_u_l, s_dt_l, s_B_l, s_C_l, s_u_l,
                                         t + 7 * step, L, WRITE_Y, False)
    if not WRITE_Y:
        tl.store(seg_h_p + seg * N, h, mask=mask_e[None, :])
        tl.store(seg_dt_p + seg, dt_sum, mask=mask_e)
    elif HEAD:
        tl.store(seg_h_p + (SUB - 1) * N, h, mask=mask_e[None, :] & (seg == 0))
        tl.store(seg_dt_p + SUB - 1, dt_sum, mask=mask_e & (seg == 0))


@triton.jit
def _gate_sum_kernel(
    y_ptr, z_ptr, out_ptr, E, L,
    s_y_d, s_y_b, s_y_e, s_y_l,
    s_z_b, s_z_e, s_z_l,
    s_o_b, s_o_e, s_o_l,
    BLOCK_L: tl.constexpr, BLOCK_E: tl.constexpr, FAST: tl.constexpr,
):
    """``out = (y[0] + y[1]) * silu(z) / 2`` over (B, E, L), a (BLOCK_L, BLOCK_E) tile a program (the
    tensors are channels-last: E is the contiguous axis of all three)."""
    pid_l = tl.program_id(0)
    pid_e = tl.program_id(1)
    pid_b = tl.program_id(2)
    offs_l = pid_l * BLOCK_L + tl.arange(0, BLOCK_L)
    offs_e = pid_e * BLOCK_E + tl.arange(0, BLOCK_E)
    mask = (offs_l < L)[:, None] & (offs_e < E)[None, :]
    y_p = y_ptr + pid_b * s_y_b + offs_e[None, :] * s_y_e + offs_l[:, None] * s_y_l
    y = tl.load(y_p, mask=mask, other=0.0).to(tl.float32) + tl.load(y_p + s_y_d, mask=mask, other=0.0).to(tl.float32)
    z = tl.load(z_ptr + pid_b * s_z_b + offs_e[None, :] * s_z_e + offs_l[:, None] * s_z_l, mask=mask,
                other=0.0).to(tl.float32)
    tl.store(out_ptr + pid_b * s_o_b + offs_e[None, :] * s_o_e + offs_l[:, None] * s_o_l,
             (y * _silu_half(z, FAST)).to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _gate_out_proj_kernel(
    y_ptr, h_ptr, wz_ptr, wo_ptr, out_ptr, M, E, D,
    s_y_d, s_y_m, s_h_m, s_o_m,
    BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, D0: tl.constexpr, D1: tl.constexpr,
    IEEE: tl.constexpr, F32_DOTS: tl.constexpr, FAST: tl.constexpr,
):
    """The mixer's tail for inference, BLOCK_M rows of (B L) a program:
    ``out = ((y[0] + y[1]) * silu(h @ wz^T) / 2) @ wo^T``.

    ``y`` (2, M, E) rows (the walks' channels-last outputs), ``h`` (M, D) the mixer's input, ``wz`` (E, D)
    in_proj's z half, ``wo`` (D, E) out_proj, ``out`` (M, D); every row has its last axis contiguous. The
    z and gate tiles of BLOCK_K channels live only in registers: the (M, E) z and gate tensors of the
    unfused tail are never written. z and the gate are rounded to the output dtype where the unfused
    tail stores them, so only the GEMMs' order of summation differs from it. F32_DOTS casts the operands
    to fp32 before each tl.dot (the interpreter's tl.dot gives wrong values on bf16, Triton 3.8; products
    of 16-bit values are exact in fp32, so the result is the same up to the order of summation). The D axis is two
    power-of-two parts, [0, D0) and [D0, D0 + D1) (both masked past D), for Triton's power-of-two tiles.
    """
    pid = tl.program_id(0)
    offs_m = pid * BLOCK_M + tl.arange(0, BLOCK_M)
    mask_m = offs_m < M
    offs_d0 = tl.arange(0, D0)
    offs_d1 = D0 + tl.arange(0, D1)
    mask_d0 = offs_d0 < D
    mask_d1 = offs_d1 < D
    offs_k = tl.arange(0, BLOCK_K)
    h0 = tl.load(h_ptr + offs_m[:, None] * s_h_m + offs_d0[None, :], mask=mask_m[:, None] & mask_d0[None, :],
                 other=0.0)
    h1 = tl.load(h_ptr + offs_m[:, None] * s_h_m + offs_d1[None, :], mask=mask_m[:, None] & mask_d1[None, :],
                 other=0.0)
    acc0 = tl.zeros((BLOCK_M, D0), tl.float32)
    acc1 = tl.zeros((BLOCK_M, D1), tl.float32)
    dot_ty = tl.float32 if F32_DOTS else out_ptr.dtype.element_ty
    h0 = h0.to(dot_ty)
    h1 = h1.to(dot_ty)
    precision: tl.constexpr = "ieee" if IEEE else "tf32"
    for k0 in range(0, E, BLOCK_K):
        ks = k0 + offs_k
        mask_k = ks < E
        # wz^T's (D, BLOCK_K) parts and wo^T's (BLOCK_K, D) parts
        wz0 = tl.load(wz_ptr + ks[None, :] * D + offs_d0[:, None], mask=mask_k[None, :] & mask_d0[:, None], other=0.0)
        wz1 = tl.load(wz_ptr + ks[None, :] * D + offs_d1[:, None], mask=mask_k[None, :] & mask_d1[:, None], other=0.0)
        z = tl.dot(h0, wz0.to(dot_ty), input_precision=precision)
        z = tl.dot(h1, wz1.to(dot_ty), z, input_precision=precision)
        z = z.to(out_ptr.dtype.element_ty).to(tl.float32)
        mask = mask_m[:, None] & mask_k[None, :]
        y_p = y_ptr + offs_m[:, None] * s_y_m + ks[None, :]
        y = tl.load(y_p, mask=mask, other=0.0).to(tl.float32) + \
            tl.load(y_p + s_y_d, mask=mask, other=0.0).to(tl.float32)
        g = (y * _silu_half(z, FAST)).to(out_ptr.dtype.element_ty).to(dot_ty)
        wo0 = tl.load(wo_ptr + offs_d0[None, :] * E + ks[:, None], mask=mask_k[:, None] & mask_d0[None, :], other=0.0)
        wo1 = tl.load(wo_ptr + offs_d1[None, :] * E + ks[:, None], mask=mask_k[:, None] & mask_d1[None, :], other=0.0)
        acc0 = tl.dot(g, wo0.to(dot_ty), acc0, input_precision=precision)
        acc1 = tl.dot(g, wo1.to(dot_ty), acc1, input_precision=precision)
    o_p = out_ptr + offs_m[:, None] * s_o_m
    tl.store(o_p + offs_d0[None, :], acc0.to(out_ptr.dtype.element_ty), mask=mask_m[:, None] & mask_d0[None, :])
    tl.store(o_p + offs_d1[None, :], acc1.to(out_ptr.dtype.element_ty), mask=mask_m[:, None] & mask_d1[None, :])


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
    N: tl.constexpr, BLOCK_E: tl.constexpr, CHUNK: tl.constexpr, FAST: tl.constexpr,
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
        dt = tl.where(mask, _softplus(dt_raw, FAST), 0.0)
        dt_next = tl.load(dt_base + t_next[None, :] * s_dt_l, mask=mask_next, other=0.0).to(tl.float32)
        dt_next = tl.where(mask_next, _softplus(dt_next + bias[:, None], FAST), 0.0)
        Bt = tl.load(B_base + t[:, None] * s_B_l, mask=mask_t[:, None], other=0.0).to(tl.float32)
        Ct = tl.load(C_base + t[:, None] * s_C_l, mask=mask_t[:, None], other=0.0).to(tl.float32)
        zz = tl.load(z_base + t[None, :] * s_z_l, mask=mask, other=0.0).to(tl.float32)
        g = tl.load(g_base + t[None, :] * s_g_l, mask=mask, other=0.0).to(tl.float32)

        # recompute the states of this chunk
        h0 = tl.load(st_base + chunk * N, mask=mask_e[:, None], other=0.0)
        decay = _exp2(dt[:, :, None] * A[:, None, :], FAST)
        inp = (dt * u)[:, :, None] * Bt[None, :, :]
        acc_a, acc_b = tl.associative_scan((decay, inp), axis=1, combine_fn=_recurrence)
        hs = acc_a * h0[:, None, :] + acc_b
        y = tl.sum(hs * Ct[None, :, :], axis=2) + Dv[:, None] * u

        sig_z = _sigmoid(zz, FAST)
        dy = g * zz * sig_z * 0.5
        # d/dz of silu(z) = sig (1 + z (1 - sig)); the other direction adds its y the same way
        dz = g * 0.5 * y * sig_z * (1.0 + zz * (1.0 - sig_z))
        tl.atomic_add(dz_base + t[None, :], dz, mask=mask, sem="relaxed")

        # reverse scan for dh, seeded by the following chunk
        decay_next = _exp2(dt_next[:, :, None] * A[:, None, :], FAST)
        src = Ct[None, :, :] * dy[:, :, None]
        rev_a, rev_b = tl.associative_scan((decay_next, src), axis=1, combine_fn=_recurrence, reverse=True)
        dh = rev_b + rev_a * dh_next[:, None, :]
        dh_next = tl.sum(tl.where((offs_s == 0)[None, :, None], dh, 0.0), axis=1)

        d_log_decay = dh * (hs - inp)  # dL/d(dt A) = dh_t * a_t * h_{t-1}
        dA_acc += tl.sum(d_log_decay * dt[:, :, None], axis=1)
        dh_B = tl.sum(dh * Bt[None, :, :], axis=2)  # (BLOCK_E, CHUNK)
        ddt = tl.sum(d_log_decay * A_nat[:, None, :], axis=2) + u * dh_B
        ddt_raw = tl.where(mask, ddt * _sigmoid(dt_raw, FAST), 0.0)
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
def _row_block(M, D, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr):
    # this program's BLOCK_M rows of an (M, D) row-major tensor: rows, cols, row mask, element mask, offsets
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.arange(0, BLOCK_D)
    mask_m = rows < M
    mask = mask_m[:, None] & (cols < D)[None, :]
    return rows, cols, mask_m, mask, rows[:, None] * D + cols[None, :]


@triton.jit
def _add_rmsnorm_fwd_kernel(
    x_ptr, res_ptr, w_ptr, out_ptr, res_out_ptr, rstd_ptr, M, D, eps,
    HAS_RESIDUAL: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """res_out = res + x (fp32); out = res_out * rsqrt(mean(res_out^2) + eps) * w, rows of D contiguous."""
    rows, cols, mask_m, mask, offs = _row_block(M, D, BLOCK_M, BLOCK_D)
    r = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    if HAS_RESIDUAL:
        r += tl.load(res_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    tl.store(res_out_ptr + offs, r, mask=mask)
    rstd = 1.0 / tl.sqrt(tl.sum(r * r, axis=1) / D + eps)
    w = tl.load(w_ptr + cols, mask=cols < D, other=0.0).to(tl.float32)
    tl.store(out_ptr + offs, (r * rstd[:, None] * w[None, :]).to(out_ptr.dtype.element_ty), mask=mask)
    tl.store(rstd_ptr + rows, rstd, mask=mask_m)


@triton.jit
def _add_rmsnorm_bwd_kernel(
    res_out_ptr, rstd_ptr, w_ptr, g_ptr, g_res_ptr, dx_ptr, dres_ptr, dw_ptr, M, D,
    HAS_GRAD_RES: tl.constexpr, HAS_RESIDUAL: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """Gradients of ``_add_rmsnorm_fwd_kernel`` for BLOCK_M rows (all contiguous, D wide).

    With xhat = res_out * rstd and gw = g * w: d(res_out) = rstd (gw - xhat mean(gw xhat)) + g_res, written
    in the dtype of x (``dx``) and, with HAS_RESIDUAL, in fp32 (``dres``); this program's share of the
    weight gradient, sum over its rows of g * xhat, goes to row ``program_id`` of ``dw`` (fp32).
    """
    rows, cols, mask_m, mask, offs = _row_block(M, D, BLOCK_M, BLOCK_D)
    rstd = tl.load(rstd_ptr + rows, mask=mask_m, other=0.0)
    xhat = tl.load(res_out_ptr + offs, mask=mask, other=0.0) * rstd[:, None]
    g = tl.load(g_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    w = tl.load(w_ptr + cols, mask=cols < D, other=0.0).to(tl.float32)
    gw = g * w[None, :]
    grad = rstd[:, None] * (gw - xhat * (tl.sum(gw * xhat, axis=1) / D)[:, None])
    if HAS_GRAD_RES:
        grad += tl.load(g_res_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    tl.store(dx_ptr + offs, grad.to(dx_ptr.dtype.element_ty), mask=mask)
    if HAS_RESIDUAL:
        tl.store(dres_ptr + offs, grad, mask=mask)
    tl.store(dw_ptr + tl.program_id(0) * D + cols, tl.sum(g * xhat, axis=0), mask=cols < D)


@triton.jit
def _scan_bwd_walk_kernel(
    u_ptr, dt_ptr, B_ptr, C_ptr, z_ptr, A_ptr, D_ptr, bias_ptr, states_ptr, g_ptr,
    du_ptr, ddt_ptr, dB_ptr, dC_ptr, dz_ptr, dA_ptr, dD_ptr, dbias_ptr, scratch_ptr,
    E, L, n_chunks,
    s_u_d, s_u_b, s_u_e, s_u_l,
    s_dt_d, s_dt_b, s_dt_e, s_dt_l,
    s_B_d, s_B_b, s_B_n, s_B_l,
    s_C_d, s_C_b, s_C_n, s_C_l,
    s_z_b, s_z_e, s_z_l,
    s_g_b, s_g_e, s_g_l,
    s_o_d, s_o_b, s_o_e, s_o_l,
    seg_dh_ptr, seg_dt_ptr, seg_chunks,
    N: tl.constexpr, BLOCK_E: tl.constexpr, CHUNK: tl.constexpr, SEGMENTS: tl.constexpr, FAST: tl.constexpr,
):
    """Gradients of the token walk; one program per (channel block, batch row, direction, segment).

    Chunks of CHUNK tokens are visited in reverse scan order. Per chunk the states are recomputed by
    walking forward from the saved chunk-entry state into ``scratch`` (this program's CHUNK slots of
    (BLOCK_E, N) fp32), then the chunk is walked backward carrying ``dh`` = dL/dh_t:
    ``dh_t = C_t dy_t + a_{t+1} dh_{t+1}``; ``a_t h_{t-1}`` is ``h_t - dt_t u_t B_t``, never a division.
    du, ddt (raw dt, before bias and softplus) and the per-direction dz are written with the layout of
    ``du`` (``s_o_*``); dB, dC (2, B, N, L) and dA, dD, dbias are fp32 sums over channel blocks (atomics).
    With SEGMENTS > 1 the walk is cut into SEGMENTS runs of ``seg_chunks`` chunks (in scan order); a
    segment starts from the dh that the later segments send it, composed from their summaries
    (``_scan_bwd_seg_kernel``): ``dh_in(s) = out(s + 1) + exp(A sum dt_{s+1}) dh_in(s + 1)``.
    """
    pid_e = tl.program_id(0)
    pid_b = tl.program_id(1)
    d = tl.program_id(2) // SEGMENTS
    seg = tl.program_id(2) % SEGMENTS
    n_batch = tl.num_programs(1)
    n_eblocks = tl.num_programs(0)
    offs_e = pid_e * BLOCK_E + tl.arange(0, BLOCK_E)
    offs_n = tl.arange(0, N)
    mask_e = offs_e < E
    mask_en = mask_e[:, None]

    # A is kept once, in natural units; a decay is exp2((dt log2 e) A)
    A_nat = tl.load(A_ptr + (d * E + offs_e[:, None]) * N + offs_n[None, :], mask=mask_en, other=0.0)
    Dv = tl.load(D_ptr + d * E + offs_e, mask=mask_e, other=0.0)
    bias = tl.load(bias_ptr + d * E + offs_e, mask=mask_e, other=0.0)

    offs_e_ld = tl.minimum(offs_e, E - 1)  # operand loads stay in bounds unmasked (see _token_load)
    u_p, dt_p, B_p, C_p, z_p = _walk_pointers(u_ptr, dt_ptr, B_ptr, C_ptr, z_ptr, d, pid_b, offs_e_ld, offs_n,
                                              s_u_d, s_u_b, s_u_e, s_dt_d, s_dt_b, s_dt_e, s_B_d, s_B_b, s_B_n,
                                              s_C_d, s_C_b, s_C_n, s_z_b, s_z_e)
    g_p = g_ptr + pid_b * s_g_b + offs_e_ld * s_g_e
    o_off = d * s_o_d + pid_b * s_o_b + offs_e * s_o_e  # du, ddt, dz share this layout
    st_p = states_ptr + ((d * n_batch + pid_b) * E + offs_e_ld[:, None]) * (n_chunks * N) + offs_n[None, :]
    prog = ((d * n_batch + pid_b) * SEGMENTS + seg) * n_eblocks + pid_e
    scr = scratch_ptr + prog * (CHUNK * BLOCK_E * N) + tl.arange(0, BLOCK_E)[:, None] * N + offs_n[None, :]
    dBC = ((d * n_batch + pid_b) * N + offs_n) * L  # dB, dC: (2, B, N, L) contiguous
    step = 1 - 2 * d

    dh = tl.zeros((BLOCK_E, N), tl.float32)
    if SEGMENTS > 1:  # the dh entering this segment from the later ones (scan order), last first
        seg_row = ((d * n_batch + pid_b) * E + offs_e[:, None]) * SEGMENTS
        for i in range(0, SEGMENTS - 1 - seg):
            j = SEGMENTS - 1 - i
            dh = tl.load(seg_dh_ptr + (seg_row + j) * N + offs_n[None, :], mask=mask_en, other=0.0) + \
                _exp2(A_nat * (LOG2E * tl.load(seg_dt_ptr + seg_row + j, mask=mask_en, other=0.0)), FAST) * dh
    dA_acc = tl.zeros((BLOCK_E, N), tl.float32)
    dD_acc = tl.zeros((BLOCK_E,), tl.float32)
    dbias_acc = tl.zeros((BLOCK_E,), tl.float32)
    # this segment's chunks in scan order are [p_begin, p_end); c counts them in reverse scan order
    p_begin = seg * seg_chunks
    p_end = tl.minimum(n_chunks, p_begin + seg_chunks)
    for c in range(n_chunks - p_end, n_chunks - p_begin):
        tc = (n_chunks - 1 - c) + d * (2 * c - n_chunks + 1)  # token chunk: last (forward) / first (backward)
        t_lo = tc * CHUNK
        t_hi = tl.minimum(L, t_lo + CHUNK) - 1
        n_tok = t_hi - t_lo + 1
        ts = t_lo + d * (t_hi - t_lo)  # first token of the chunk in scan order
        # recompute the chunk's states h_t into the scratch slots, in scan order. Operands are loaded two
        # tokens ahead (clamped into [0, L): the surplus loads at the chunk's end are never used), so a
        # step does not wait on its own loads
        h = tl.load(st_p + tc * N)
        u0, dt0, B0, _c, _z = _token_load(u_p, dt_p, B_p, C_p, z_p, s_u_l, s_dt_l, s_B_l, s_C_l, s_z_l, ts, L,
                                          False, False)
        u1, dt1, B1, _c, _z = _token_load(u_p, dt_p, B_p, C_p, z_p, s_u_l, s_dt_l, s_B_l, s_C_l, s_z_l, ts + step, L,
                                          False, False)
        for k in range(0, n_tok):
            u, dt_raw, Bt = u0, dt0, B0
            u0, dt0, B0 = u1, dt1, B1
            u1, dt1, B1, _c, _z = _token_load(u_p, dt_p, B_p, C_p, z_p, s_u_l, s_dt_l, s_B_l, s_C_l, s_z_l,
                                              ts + (k + 2) * step, L, False, False)
            dt = _softplus(dt_raw + bias, FAST)
            h = _exp2((dt * LOG2E)[:, None] * A_nat, FAST) * h + (dt * u)[:, None] * Bt[None, :]
            tl.store(scr + k * (BLOCK_E * N), h)
        tl.debug_barrier()
        # walk the chunk backward; the next step's operands (and its state from scratch) are loaded one
        # step ahead, a step has enough work to cover them
        t = ts + (n_tok - 1) * step
        nu, ndt, nB, nC, nz = _token_load(u_p, dt_p, B_p, C_p, z_p, s_u_l, s_dt_l, s_B_l, s_C_l, s_z_l, t, L,
                                          True, True)
        ng = tl.load(g_p + t * s_g_l).to(tl.float32)
        nh = tl.load(scr + (n_tok - 1) * (BLOCK_E * N))
        for j in range(0, n_tok):
            k = n_tok - 1 - j
            t = ts + k * step
            # g = 0 on channels past E (their loads were clamped to channel E - 1): their dh stays 0, so
            # they add nothing to the dB / dC sums over the block
            u, dt_raw, Bt, Ct, zz, g, h = nu, ndt + bias, nB, nC, nz, tl.where(mask_e, ng, 0.0), nh
            nu, ndt, nB, nC, nz = _token_load(u_p, dt_p, B_p, C_p, z_p, s_u_l, s_dt_l, s_B_l, s_C_l, s_z_l,
                                              t - step, L, True, True)
            ng = tl.load(g_p + tl.minimum(tl.maximum(t - step, 0), L - 1) * s_g_l).to(tl.float32)
            nh = tl.load(scr + tl.maximum(k - 1, 0) * (BLOCK_E * N))
            dt = _softplus(dt_raw, FAST)
            inp = (dt * u)[:, None] * Bt[None, :]
            y = tl.sum(h * Ct[None, :], axis=1) + Dv * u
            sig_z = _sigmoid(zz, FAST)
            dy = g * zz * sig_z * 0.5
            # d silu(z) / dz = sig (1 + z (1 - sig)); the other direction writes its own share
            tl.store(dz_ptr + o_off + t * s_o_l, g * 0.5 * y * sig_z * (1.0 + zz * (1.0 - sig_z)), mask=mask_e)
            dh += Ct[None, :] * dy[:, None]  # now dL/dh_t
            d_log_decay = dh * (h - inp)  # dL/d(dt A) = dh_t a_t h_{t-1}
            dA_acc += d_log_decay * dt[:, None]
            dh_B = tl.sum(dh * Bt[None, :], axis=1)
            ddt_raw = (tl.sum(d_log_decay * A_nat, axis=1) + u * dh_B) * _sigmoid(dt_raw, FAST)
            dD_acc += dy * u
            dbias_acc += ddt_raw
            tl.store(du_ptr + o_off + t * s_o_l, (dt * dh_B + Dv * dy).to(du_ptr.dtype.element_ty), mask=mask_e)
            tl.store(ddt_ptr + o_off + t * s_o_l, ddt_raw.to(ddt_ptr.dtype.element_ty), mask=mask_e)
            tl.atomic_add(dB_ptr + dBC + t, tl.sum(dh * (dt * u)[:, None], axis=0), sem="relaxed")
            tl.atomic_add(dC_ptr + dBC + t, tl.sum(h * dy[:, None], axis=0), sem="relaxed")
            dh = dh * _exp2((dt * LOG2E)[:, None] * A_nat, FAST)  # to dL/dh_{t-1}
        tl.debug_barrier()  # the next chunk rewrites the scratch slots
    tl.atomic_add(dA_ptr + (d * E + offs_e[:, None]) * N + offs_n[None, :], dA_acc, mask=mask_en, sem="relaxed")
    tl.atomic_add(dD_ptr + d * E + offs_e, dD_acc, mask=mask_e, sem="relaxed")
    tl.atomic_add(dbias_ptr + d * E + offs_e, dbias_acc, mask=mask_e, sem="relaxed")


@triton.jit
def _scan_bwd_seg_kernel(
    dt_ptr, C_ptr, z_ptr, A_ptr, bias_ptr, g_ptr, seg_dh_ptr, seg_dt_ptr,
    E, L, n_chunks, seg_chunks,
    s_dt_d, s_dt_b, s_dt_e, s_dt_l,
    s_C_d, s_C_b, s_C_n, s_C_l,
    s_z_b, s_z_e, s_z_l,
    s_g_b, s_g_e, s_g_l,
    N: tl.constexpr, BLOCK_E: tl.constexpr, CHUNK: tl.constexpr, SEGMENTS: tl.constexpr, FAST: tl.constexpr,
):
    """Summaries of backward segments 1 .. SEGMENTS - 1 for ``_scan_bwd_walk_kernel``.

    For segment s, walked in reverse scan order from dh = 0: ``out(s)``, the dh it sends to the state
    before its first token (``seg_dh`` (2, B, E, SEGMENTS, N) fp32), and its total step ``sum dt``
    (``seg_dt`` (2, B, E, SEGMENTS)). Needs no states: ``dh_t = C_t dy_t + a_{t+1} dh_{t+1}``.
    """
    pid_e = tl.program_id(0)
    pid_b = tl.program_id(1)
    d = tl.program_id(2) // (SEGMENTS - 1)
    seg = tl.program_id(2) % (SEGMENTS - 1) + 1
    n_batch = tl.num_programs(1)
    offs_e = pid_e * BLOCK_E + tl.arange(0, BLOCK_E)
    offs_n = tl.arange(0, N)
    mask_e = offs_e < E
    mask_en = mask_e[:, None]
    A2 = tl.load(A_ptr + (d * E + offs_e[:, None]) * N + offs_n[None, :], mask=mask_en, other=0.0) * LOG2E
    bias = tl.load(bias_ptr + d * E + offs_e, mask=mask_e, other=0.0)
    dt_p = dt_ptr + d * s_dt_d + pid_b * s_dt_b + offs_e * s_dt_e
    C_p = C_ptr + d * s_C_d + pid_b * s_C_b + offs_n * s_C_n
    z_p = z_ptr + pid_b * s_z_b + offs_e * s_z_e
    g_p = g_ptr + pid_b * s_g_b + offs_e * s_g_e
    step = 1 - 2 * d

    dh = tl.zeros((BLOCK_E, N), tl.float32)
    dt_sum = tl.zeros((BLOCK_E,), tl.float32)
    p_begin = seg * seg_chunks
    p_end = tl.minimum(n_chunks, p_begin + seg_chunks)
    for c in range(n_chunks - p_end, n_chunks - p_begin):
        tc = (n_chunks - 1 - c) + d * (2 * c - n_chunks + 1)  # as in _scan_bwd_walk_kernel
        t_lo = tc * CHUNK
        t_hi = tl.minimum(L, t_lo + CHUNK) - 1
        n_tok = t_hi - t_lo + 1
        ts = t_lo + d * (t_hi - t_lo)
        for j in range(0, n_tok):
            t = ts + (n_tok - 1 - j) * step
            dt = _softplus(tl.load(dt_p + t * s_dt_l, mask=mask_e, other=0.0).to(tl.float32) + bias, FAST)
            Ct = tl.load(C_p + t * s_C_l).to(tl.float32)
            zz = tl.load(z_p + t * s_z_l, mask=mask_e, other=0.0).to(tl.float32)
            g = tl.load(g_p + t * s_g_l, mask=mask_e, other=0.0).to(tl.float32)
            dy = g * zz * _sigmoid(zz, FAST) * 0.5
            dh = (dh + Ct[None, :] * dy[:, None]) * _exp2(dt[:, None] * A2, FAST)
            dt_sum += dt
    row = ((d * n_batch + pid_b) * E + offs_e) * SEGMENTS + seg
    tl.store(seg_dh_ptr + row[:, None] * N + offs_n[None, :], dh, mask=mask_en)
    tl.store(seg_dt_ptr + row, dt_sum, mask=mask_e)
