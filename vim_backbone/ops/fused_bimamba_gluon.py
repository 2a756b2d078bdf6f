"""The fused scan's forward walk and its walk backward written in Gluon, Triton's explicit-layout dialect (CUDA only).

The walk backward (``_scan_bwd_walk_gluon_kernel``, ``_scan_bwd_seg_gluon_kernel``) is described where it is
defined, below; what follows is about the forward walk.

Same arguments, grid and results as ``fused_bimamba_kernels._scan_fwd_kernel``; what differs is the layout
of the state tile (N, BLOCK_E). The Triton kernel's compiler spreads each channel's N states over four
lanes (the coalescing of the 16-byte loads of A decides it, and no source form moved it): then the per-channel
work (softplus, D skip) runs in a one-channel-a-lane layout, and each token pays three round trips through
shared memory (with a barrier each) between the two layouts, and two shuffles a channel for the output's
sum over the states. Here the layout is stated: lane ``i`` of warp ``w`` owns channel ``32 w + i`` and all
its N states (``SPLIT`` > 1 spreads them over 2 or 4 lanes), so the per-channel vectors are the tile's own
slice, the sum over the states is a thread's own, and a token step exchanges nothing between lanes.

B and C of a token are the same for every lane, so each lane holds all N of each: 32 registers a token in
flight, too many to load far ahead into registers. Both passes stage STAGE tokens at a time
through shared memory instead: the next group's operands load as tiles while the current group is walked,
and a step reads its B and C as 16-byte shared-memory reads of one address (ncu on an H200, the output
pass: 337 us against 455 us with two tokens loaded ahead, which waited on its loads; docs/RESULTS.md,
session 7).

Gluon is experimental in Triton; the kernel is compiled on CUDA only (the interpreter does not run Gluon),
checked against the Triton kernel and the reference by the GPU tests of ``tests/ops/test_fused.py``, and
used when :func:`~vim_backbone.ops.fused_bimamba.forward_kind` says so (``VIM_FUSED_FORWARD=triton`` turns
it off; for the walk backward :func:`~vim_backbone.ops.fused_bimamba.backward_walk_kind` and
``VIM_FUSED_BACKWARD_WALK=triton``).
"""
from triton.experimental import gluon
from triton.experimental.gluon import language as gl

# a barrier across the program's warps: ``thread_barrier`` in Triton 3.6, ``barrier`` from 3.7
_cta_barrier = gl.barrier if hasattr(gl, "barrier") else gl.thread_barrier
LOG2E = gl.constexpr(1.4426950408889634)
LN2 = gl.constexpr(0.6931471805599453)
# ln(1 + e) = e q(e) for e in [0, 1]: the coefficients of q (degree 8, constant term first), a least-squares
# fit of ln(1 + e) / e at 8000 Chebyshev nodes; evaluated by Horner in fp32 the relative error of e q(e) is
# 2.0e-7 (tests/ops/test_fused.py), that of MUFU.LG2
LOG1P_Q = gl.constexpr((1.0, -0.49999502301216125, 0.33319270610809326, -0.24844369292259216, 0.19111430644989014,
                        -0.13674770295619965, 0.07836166769266129, -0.02958850748836994, 0.005253457929939032))


@gluon.jit
def _ptx_f32(x, ASM: gl.constexpr):
    return gl.inline_asm_elementwise(ASM, "=r,r", [x], dtype=gl.float32, is_pure=True, pack=1)


@gluon.jit
def _exp2(x):
    return _ptx_f32(x, "ex2.approx.ftz.f32 $0, $1;")


@gluon.jit
def _softplus(x, POLY: gl.constexpr):
    """torch's softplus (threshold 20), as :func:`_softplus_and_sigmoid` takes it (the compiler drops the
    derivative)."""
    return _softplus_and_sigmoid(x, POLY)[0]


@gluon.jit
def _load_group(u_tp, dt_tp, B_tp, C_tp, s_u_l, s_dt_l, s_B_l, s_C_l, t_first, step, L, k_e, k_n,
                WRITE_Y: gl.constexpr):
    """The operand tiles of the STAGE tokens from ``t_first`` on in walk order (``step`` = +1 or -1): u and dt
    (STAGE, BLOCK_E), B and C (STAGE, N) in fp32. Tokens are clamped into [0, L): steps outside the walk are
    no-ops in _step. The state pass needs no C (B stands in)."""
    te = gl.minimum(gl.maximum(t_first + k_e * step, 0), L - 1)[:, None]
    tn = gl.minimum(gl.maximum(t_first + k_n * step, 0), L - 1)[:, None]
    B = gl.load(B_tp + tn * s_B_l).to(gl.float32)
    C = B
    if WRITE_Y:
        C = gl.load(C_tp + tn * s_C_l).to(gl.float32)
    return gl.load(u_tp + te * s_u_l), gl.load(dt_tp + te * s_dt_l), B, C


@gluon.jit
def _rows2(x):
    """(M, E) -> its rows [0, M/2) and [M/2, M) as two (M/2, E) tensors (a register renaming)."""
    M: gl.constexpr = x.shape[0]
    return gl.split(gl.permute(gl.reshape(x, [2, M // 2, x.shape[1]]), [1, 2, 0]))


@gluon.jit
def _rows4(x):
    a, b = _rows2(x)
    a0, a1 = _rows2(a)
    b0, b1 = _rows2(b)
    return a0, a1, b0, b1


@gluon.jit
def _chain(xs, ws, FIRST: gl.constexpr, COUNT: gl.constexpr):
    """xs[FIRST] ws[FIRST] + ... + xs[FIRST + COUNT - 1] ws[FIRST + COUNT - 1], one fused multiply-add after another."""
    y = xs[FIRST] * ws[FIRST]
    for i in gl.static_range(1, COUNT):
        y = xs[FIRST + i] * ws[FIRST + i] + y
    return y


@gluon.jit
def _sum_states(x, w, CH: gl.constexpr, CHAINS: gl.constexpr):
    """The sum over the states (axis 0) of x w, (N, E) tiles whose N states a thread holds, in layout CH. CHAINS = 0:
    gl.sum, whose order depends on Triton's version (3.6: one chain of N fused multiply-adds; 3.8: a tree, N / 2 more
    instructions). For N = 16, CHAINS = 1, 2 or 4 fixes it: that many independent chains of fused multiply-adds over
    consecutive states, then their sum (pairwise)."""
    if (x.shape[0] != 16) | (CHAINS == 0):
        return gl.sum(x * w, axis=0)
    else:
        gl.static_assert((CHAINS == 1) | (CHAINS == 2) | (CHAINS == 4))
        w, x = gl.broadcast(w, x)
        q0, q1, q2, q3 = _rows4(x)
        r0, r1, r2, r3 = _rows4(w)
        xs = _rows4(q0) + _rows4(q1) + _rows4(q2) + _rows4(q3)  # the 16 states' (1, E) rows
        ws = _rows4(r0) + _rows4(r1) + _rows4(r2) + _rows4(r3)
        K: gl.constexpr = 16 // CHAINS
        if CHAINS == 1:
            y = _chain(xs, ws, 0, K)
        elif CHAINS == 2:
            y = _chain(xs, ws, 0, K) + _chain(xs, ws, K, K)
        else:
            y = (_chain(xs, ws, 0, K) + _chain(xs, ws, K, K)) + (_chain(xs, ws, 2 * K, K) + _chain(xs, ws, 3 * K, K))
        return gl.convert_layout(gl.reshape(y, [y.shape[1]]), CH)


@gluon.jit
def _step(h, dt_sum, A2, bias, Dv, u, dt_raw, Bt, Ct, t, valid, d, L, y_p, s_y_l, st_p, mask_e,
          N: gl.constexpr, CHUNK: gl.constexpr, STORE_STATES: gl.constexpr, WRITE_Y: gl.constexpr,
          POLY: gl.constexpr, CH: gl.constexpr, CHAINS: gl.constexpr):
    if STORE_STATES:  # the state entering each chunk in scan order (see the Triton kernel)
        entry = (((t + d) % CHUNK) == 0) | ((d == 1) & (t == L - 1))
        gl.store(st_p + (t // CHUNK) * N, h, mask=mask_e[None, :] & (valid & entry))
    dt = gl.where(valid, _softplus(dt_raw + bias, POLY), 0.0)
    h = _exp2(dt[None, :] * A2) * h + Bt[:, None] * (dt * u)[None, :]
    if WRITE_Y:  # the sum over the states is within the thread (SPLIT = 1: CHAINS as in _sum_states)
        y = _sum_states(h, Ct[:, None], CH, CHAINS) + Dv * u
        gl.store(y_p + t * s_y_l, y.to(y_p.dtype.element_ty), mask=mask_e & valid)
    return h, dt_sum + dt


@gluon.jit
def _scan_fwd_gluon_kernel(
    u_ptr, dt_ptr, B_ptr, C_ptr, A_ptr, D_ptr, bias_ptr, y_ptr, states_ptr, seg_h_ptr, seg_dt_ptr,
    E, L, n_chunks, seg_len, sub_len, seg_first, seg_progs,
    s_A_d, s_A_e, s_A_n,
    s_u_d, s_u_b, s_u_e, s_u_l,
    s_dt_d, s_dt_b, s_dt_e, s_dt_l,
    s_B_d, s_B_b, s_B_n, s_B_l,
    s_C_d, s_C_b, s_C_n, s_C_l,
    s_y_d, s_y_b, s_y_e, s_y_l,
    N: gl.constexpr, BLOCK_E: gl.constexpr, CHUNK: gl.constexpr, STORE_STATES: gl.constexpr,
    SEGMENTS: gl.constexpr, SUB: gl.constexpr, WRITE_Y: gl.constexpr, NUM_WARPS: gl.constexpr,
    STAGE: gl.constexpr, SPLIT: gl.constexpr = 1, POLY: gl.constexpr = False, HEAD: gl.constexpr = False,
    CHAINS: gl.constexpr = 0,
):
    """``_scan_fwd_kernel`` with the state tile laid out a channel a lane: SPLIT = 1, BLOCK_E = 32 NUM_WARPS.
    With SPLIT = 2 or 4 a channel's N states are split over that many neighbouring lanes (BLOCK_E =
    32 NUM_WARPS / SPLIT): more programs, at the price of the per-channel work done SPLIT times and a
    shuffle or two in the output's sum over the states. HEAD: as in the Triton kernel, segment 0's output
    walk hands on its end state. CHAINS (SPLIT = 1 only): the output's sum over the states as :func:`_sum_states`
    takes it."""
    gl.static_assert((SPLIT == 1) | (CHAINS == 0))
    TILE: gl.constexpr = gl.BlockedLayout([N // SPLIT, 1], [SPLIT, 32 // SPLIT], [1, NUM_WARPS], [0, 1])
    CH: gl.constexpr = gl.SliceLayout(0, TILE)  # (BLOCK_E,): a channel a lane (SPLIT lanes)
    ST: gl.constexpr = gl.SliceLayout(1, TILE)  # (N,): every lane holds all N (its N / SPLIT)
    gl.static_assert(BLOCK_E * SPLIT == 32 * NUM_WARPS)
    gl.static_assert(N % SPLIT == 0)

    pid_e = gl.program_id(0)
    pid_b = gl.program_id(1)
    d = gl.program_id(2) // seg_progs
    seg = seg_first + gl.program_id(2) % seg_progs  # a segment (WRITE_Y) or a piece of one
    n_batch = gl.num_programs(1)
    offs_e = pid_e * BLOCK_E + gl.arange(0, BLOCK_E, layout=CH)
    offs_n = gl.arange(0, N, layout=ST)
    mask_e = offs_e < E

    A2 = gl.load(A_ptr + d * s_A_d + offs_e[None, :] * s_A_e + offs_n[:, None] * s_A_n, mask=mask_e[None, :],
                 other=0.0) * LOG2E
    Dv = gl.load(D_ptr + d * E + offs_e, mask=mask_e, other=0.0)
    bias = gl.load(bias_ptr + d * E + offs_e, mask=mask_e, other=0.0)

    y_p = y_ptr + d * s_y_d + pid_b * s_y_b + offs_e * s_y_e
    st_p = states_ptr + ((d * n_batch + pid_b) * E + offs_e[None, :]) * (n_chunks * N) + offs_n[:, None]
    seg_row = (d * n_batch + pid_b) * E + offs_e
    seg_h_p = seg_h_ptr + seg_row[None, :] * (SEGMENTS * SUB * N) + offs_n[:, None]
    seg_dt_p = seg_dt_ptr + seg_row * (SEGMENTS * SUB)

    h = gl.zeros((N, BLOCK_E), gl.float32, TILE)
    if WRITE_Y:
        if SEGMENTS > 1:
            for j in range((SUB - 1) if HEAD else 0, seg * SUB):
                h = _exp2(A2 * gl.load(seg_dt_p + j, mask=mask_e, other=0.0)[None, :]) * h + \
                    gl.load(seg_h_p + j * N, mask=mask_e[None, :], other=0.0)
    dt_sum = gl.zeros((BLOCK_E,), gl.float32, CH)

    if WRITE_Y:
        i_begin = seg * seg_len
        i_end = gl.minimum(L, i_begin + seg_len)
    else:
        i_begin = seg * sub_len
        i_end = gl.minimum(L, i_begin + sub_len)
    t0 = d * (L - 1)  # token of step i: t0 + i * step
    step = 1 - 2 * d
    # STAGE tokens at a time through shared memory: while a program walks one group of STAGE tokens, the
    # loads of the next group are in flight (16-byte loads of the (STAGE, N) B and C tiles and of the
    # (STAGE, BLOCK_E) u and dt tiles, into registers), and a token step reads its operands from shared
    # memory, B and C as 16-byte reads the warp serves from one address
    LD_E: gl.constexpr = gl.BlockedLayout([1, 1], [1, 32], [1, NUM_WARPS], [1, 0])  # (STAGE, BLOCK_E)
    LD_N: gl.constexpr = gl.BlockedLayout([1, 4], [8, 4], [NUM_WARPS, 1], [1, 0])  # (STAGE, N)
    # unswizzled row-major tiles: written whole, read a row (token) at a time through a view whose leading
    # axis indexes the rows
    SMEM: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [1, 0])
    ROWS: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [0])
    # operand loads stay in bounds unmasked: channels past E read channel E - 1 (their stores are masked)
    e_ld = gl.minimum(pid_e * BLOCK_E + gl.arange(0, BLOCK_E, layout=gl.SliceLayout(0, LD_E)), E - 1)
    n_ld = gl.arange(0, N, layout=gl.SliceLayout(0, LD_N))
    k_e = gl.arange(0, STAGE, layout=gl.SliceLayout(1, LD_E))
    k_n = gl.arange(0, STAGE, layout=gl.SliceLayout(1, LD_N))
    u_tp = (u_ptr + d * s_u_d + pid_b * s_u_b + e_ld * s_u_e)[None, :]
    dt_tp = (dt_ptr + d * s_dt_d + pid_b * s_dt_b + e_ld * s_dt_e)[None, :]
    B_tp = (B_ptr + d * s_B_d + pid_b * s_B_b + n_ld * s_B_n)[None, :]
    C_tp = (C_ptr + d * s_C_d + pid_b * s_C_b + n_ld * s_C_n)[None, :]
    u_s = gl.allocate_shared_memory(u_ptr.dtype.element_ty, [STAGE, BLOCK_E], SMEM)
    dt_s = gl.allocate_shared_memory(dt_ptr.dtype.element_ty, [STAGE, BLOCK_E], SMEM)
    B_s = gl.allocate_shared_memory(gl.float32, [STAGE, N], SMEM)
    C_s = gl.allocate_shared_memory(gl.float32, [STAGE, N], SMEM)
    u_r = u_s._reinterpret(u_ptr.dtype.element_ty, [STAGE, BLOCK_E], ROWS)
    dt_r = dt_s._reinterpret(dt_ptr.dtype.element_ty, [STAGE, BLOCK_E], ROWS)
    B_r = B_s._reinterpret(gl.float32, [STAGE, N], ROWS)
    C_r = C_s._reinterpret(gl.float32, [STAGE, N], ROWS)
    nu, ndt, nB, nC = _load_group(u_tp, dt_tp, B_tp, C_tp, s_u_l, s_dt_l, s_B_l, s_C_l, t0 + i_begin * step, step, L,
                                  k_e, k_n, WRITE_Y)
    for i in range(i_begin, i_end, STAGE):
        _cta_barrier()  # the previous group's reads are done
        u_s.store(nu)
        dt_s.store(ndt)
        B_s.store(nB)
        if WRITE_Y:
            C_s.store(nC)
        _cta_barrier()
        nu, ndt, nB, nC = _load_group(u_tp, dt_tp, B_tp, C_tp, s_u_l, s_dt_l, s_B_l, s_C_l,
                                      t0 + (i + STAGE) * step, step, L, k_e, k_n, WRITE_Y)
        for k in gl.static_range(STAGE):
            u = u_r.index(k).load(CH).to(gl.float32)
            dt_raw = dt_r.index(k).load(CH).to(gl.float32)
            Bt = B_r.index(k).load(ST)
            Ct = Bt
            if WRITE_Y:
                Ct = C_r.index(k).load(ST)
            h, dt_sum = _step(h, dt_sum, A2, bias, Dv, u, dt_raw, Bt, Ct, t0 + (i + k) * step, i + k < i_end, d, L,
                              y_p, s_y_l, st_p, mask_e, N, CHUNK, STORE_STATES, WRITE_Y, POLY, CH, CHAINS)
    if not WRITE_Y:
        gl.store(seg_h_p + seg * N, h, mask=mask_e[None, :])
        gl.store(seg_dt_p + seg, dt_sum, mask=mask_e)
    elif HEAD:
        gl.store(seg_h_p + (SUB - 1) * N, h, mask=mask_e[None, :] & (seg == 0))
        gl.store(seg_dt_p + SUB - 1, dt_sum, mask=mask_e & (seg == 0))


# ------------------------------------------------------------------------------------------------ backward


@gluon.jit
def _sigmoid(x):
    return _ptx_f32(1.0 + _exp2(-x * LOG2E), "rcp.approx.ftz.f32 $0, $1;")


@gluon.jit
def _softplus_and_sigmoid(x, POLY: gl.constexpr):
    """torch's softplus (threshold 20), max(x, 0) + ln(1 + e) with e = exp(-|x|) in (0, 1], as the Triton kernels
    compute it, and its derivative sigmoid(x) from the same exp: 1 / (1 + e) for x >= 0, e / (1 + e) below. POLY:
    ln(1 + e) = e q(e) with q of degree 8 (fit to ln(1 + e) / e on [0, 1] at Chebyshev nodes; relative error 2.0e-7
    in fp32, that of MUFU.LG2) on the FMA pipe, for one MUFU less."""
    e = _exp2(-gl.abs(x) * LOG2E)
    if POLY:
        q = e * LOG1P_Q[8] + LOG1P_Q[7]
        for i in gl.static_range(7):  # Horner, down to the constant term
            q = q * e + LOG1P_Q[6 - i]
        log1p_e = q * e
    else:
        log1p_e = _ptx_f32(1.0 + e, "lg2.approx.ftz.f32 $0, $1;") * LN2
    r = _ptx_f32(1.0 + e, "rcp.approx.ftz.f32 $0, $1;")
    return gl.where(x > 20.0, x, gl.maximum(x, 0.0) + log1p_e), gl.where(x >= 0.0, r, e * r)


@gluon.jit
def _stage_chunk(u_s, dt_s, z_s, g_s, B_s, C_s, u_tp, dt_tp, z_tp, g_tp, B_tp, C_tp,
                 s_u_l, s_dt_l, s_z_l, s_g_l, s_B_l, s_C_l, t_lo, L, k_e, k_n, m_e, LOAD_U: gl.constexpr):
    """The operands of tokens t_lo ... t_lo + CHUNK - 1 (clamped into [0, L)) into shared memory, a row a token
    in token order: u, dt, z and the output gradient g (CHUNK, BLOCK_E) in their dtypes (0 past the last channel:
    ``m_e``), B and C (CHUNK, N) fp32. Without LOAD_U (the summaries) neither u nor B is read."""
    te = gl.minimum(t_lo + k_e, L - 1)[:, None]
    tn = gl.minimum(t_lo + k_n, L - 1)[:, None]
    _cta_barrier()  # the previous chunk's reads are done
    if LOAD_U:
        u_s.store(gl.load(u_tp + te * s_u_l, mask=m_e, other=0.0))
        B_s.store(gl.load(B_tp + tn * s_B_l).to(gl.float32))
    dt_s.store(gl.load(dt_tp + te * s_dt_l, mask=m_e, other=0.0))
    z_s.store(gl.load(z_tp + te * s_z_l, mask=m_e, other=0.0))
    g_s.store(gl.load(g_tp + te * s_g_l, mask=m_e, other=0.0))
    C_s.store(gl.load(C_tp + tn * s_C_l).to(gl.float32))
    _cta_barrier()


@gluon.jit
def _row(j, n_tok, d):
    """The staged row of the chunk's scan step ``j`` (clamped to its last token)."""
    jc = gl.minimum(j, n_tok - 1)
    return jc + d * (n_tok - 1 - 2 * jc)


@gluon.jit
def _walk_token_a(h, j, n_tok, d, u_r, dt_r, B_r, A2, bias, CH: gl.constexpr, ST: gl.constexpr, POLY: gl.constexpr):
    """The state after the chunk's scan step ``j`` from the one before it (a no-op for j >= n_tok), and what the
    step's backward needs of it: the decay exp(dt A), the step softplus(dt) (0 for j >= n_tok) and its derivative.
    Passed on explicitly, not recomputed there: Triton 3.6 shares the exps of only one token in four between the two
    (compiled for sm_90: 138 MUFU a group of four against 84). The first walk takes the state alone (the compiler
    drops the rest)."""
    k = _row(j, n_tok, d)
    u = u_r.index(k).load(CH).to(gl.float32)
    dt, sig = _softplus_and_sigmoid(dt_r.index(k).load(CH).to(gl.float32) + bias, POLY)
    dt = gl.where(j < n_tok, dt, 0.0)
    a = _exp2(dt[None, :] * A2)
    return a * h + B_r.index(k).load(ST)[:, None] * (dt * u)[None, :], a, dt, sig


@gluon.jit
def _token_backward(h, dh, dA_acc, dD_acc, dbias_acc, j, n_tok, d, t_lo, u_r, z_r, g_r, B_r, C_r, A2, Dv,
                    mask_e, o_off, s_o_l, du_ptr, ddt_ptr, dz_ptr, dB_ptr, dC_ptr, dBC, a, dt, sig_dt,
                    CH: gl.constexpr, ST: gl.constexpr, RED: gl.constexpr, CHAINS: gl.constexpr = 0):
    """The gradients of the chunk's scan step ``j``, whose state after it is ``h``; ``dh`` = dL/dh after the
    step in, dL/dh before it out. ``a``, ``dt`` and ``sig_dt`` are the step's decay, step and the step's derivative
    from :func:`_walk_token_a`. Nothing is written for j >= n_tok, and dh goes through unchanged."""
    valid = j < n_tok
    k = _row(j, n_tok, d)
    t = t_lo + k
    u = u_r.index(k).load(CH).to(gl.float32)
    zz = z_r.index(k).load(CH).to(gl.float32)
    mask = mask_e & valid
    g = gl.where(mask, g_r.index(k).load(CH).to(gl.float32), 0.0)
    Bt = B_r.index(k).load(ST)
    Ct = C_r.index(k).load(ST)
    dtu = dt * u
    y = _sum_states(h, Ct[:, None], CH, CHAINS) + Dv * u
    sig_z = _sigmoid(zz)
    dy = g * zz * sig_z * 0.5
    # d silu(z) / dz = sig (1 + z (1 - sig)); the other direction writes its own share
    gl.store(dz_ptr + o_off + t * s_o_l, g * 0.5 * y * sig_z * (1.0 + zz * (1.0 - sig_z)), mask=mask)
    dh += Ct[:, None] * dy[None, :]  # now dL/dh_t
    d_log_decay = dh * (h - Bt[:, None] * dtu[None, :])  # dL/d(dt A) = dh_t a_t h_{t-1}
    dA_acc += d_log_decay * dt[None, :]
    dh_B = _sum_states(dh, Bt[:, None], CH, CHAINS)
    ddt_raw = gl.where(mask, (_sum_states(d_log_decay, A2, CH, CHAINS) * LN2 + u * dh_B) * sig_dt, 0.0)
    dD_acc += dy * u
    dbias_acc += ddt_raw
    gl.store(du_ptr + o_off + t * s_o_l, (dt * dh_B + Dv * dy).to(du_ptr.dtype.element_ty), mask=mask)
    gl.store(ddt_ptr + o_off + t * s_o_l, ddt_raw.to(ddt_ptr.dtype.element_ty), mask=mask)
    # the sums over the channels: through one layout conversion each, to rows (states) a lane sums on its own
    m_n = (dBC >= 0) & valid
    gl.atomic_add(dB_ptr + dBC + t, gl.sum(gl.convert_layout(dh * dtu[None, :], RED), axis=1), mask=m_n,
                  sem="relaxed")
    gl.atomic_add(dC_ptr + dBC + t, gl.sum(gl.convert_layout(h * dy[None, :], RED), axis=1), mask=m_n,
                  sem="relaxed")
    return dh * a, dA_acc, dD_acc, dbias_acc  # dh to dL/dh_{t-1}


@gluon.jit
def _scan_bwd_walk_gluon_kernel(
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
    N: gl.constexpr, CHUNK: gl.constexpr, SEGMENTS: gl.constexpr, NUM_WARPS: gl.constexpr,
    POLY: gl.constexpr = False, GROUP: gl.constexpr = 4, PIECES: gl.constexpr = 1, CHAINS: gl.constexpr = 0,
    SPLIT: gl.constexpr = 1,
):
    """``fused_bimamba_kernels._scan_bwd_walk_kernel`` (same arguments but the tile, BLOCK_E = 32 NUM_WARPS / SPLIT,
    and the scratch: CHUNK / GROUP x BLOCK_E x N fp32 a program; same grid and results) with a channel and its N
    states a lane: the sums over the states (y, dh B, the step's gradient) are a thread's own. The two sums over
    the channels a token needs (dB and dC) go through one layout conversion each, to a tile whose rows (states)
    a lane sums on its own. A chunk's operands are staged in shared memory once for its three walks:
    - the states in scan order from the saved chunk-entry state, keeping the state entering each group of GROUP
      (2 or 4) tokens in the scratch slots (each lane reads back only what it wrote);
    - group by group in reverse scan order, its GROUP states again from the kept one, in registers, with each token's
      decay, step and the step's derivative (:func:`_walk_token_a`),
    - and its GROUP tokens backward, which take those from that second walk.
    The Triton walk keeps every token's state (CHUNK slots): 1 / GROUP of its scratch traffic here (the scratch of
    all programs at once exceeds L2 at Vim-Ti's training sizes), for a second walk of each group. The sums over the
    states a token are CHAINS chains (:func:`_sum_states`). The dh entering a segment comes from the later
    segments' summaries, PIECES a segment (:func:`_scan_bwd_seg_gluon_kernel`).
    SPLIT = 2 or 4 spreads a channel's N states over that many neighbouring lanes (BLOCK_E = 32 NUM_WARPS / SPLIT),
    as in the forward walk: fewer registers a thread, so more warps an SM, for the per-channel work done SPLIT times
    and a lane shuffle in each sum over the states (then gl.sum: CHAINS = 0)."""
    BLOCK_E: gl.constexpr = 32 * NUM_WARPS // SPLIT
    TILE: gl.constexpr = gl.BlockedLayout([N // SPLIT, 1], [SPLIT, 32 // SPLIT], [1, NUM_WARPS], [0, 1])
    CH: gl.constexpr = gl.SliceLayout(0, TILE)
    ST: gl.constexpr = gl.SliceLayout(1, TILE)
    gl.static_assert(N <= 32)
    gl.static_assert(32 % N == 0)
    gl.static_assert((SPLIT == 1) | (SPLIT == 2) | (SPLIT == 4))
    gl.static_assert(N % SPLIT == 0)
    gl.static_assert((SPLIT == 1) | (CHAINS == 0))
    gl.static_assert((GROUP == 2) | (GROUP == 4))
    gl.static_assert(CHUNK % GROUP == 0)
    # the sums over channels: N lanes down the states, 32 / N lanes and the warps across the channels
    RED: gl.constexpr = gl.BlockedLayout([1, BLOCK_E // (32 // N) // NUM_WARPS], [N, 32 // N], [1, NUM_WARPS],
                                         [1, 0])
    RN: gl.constexpr = gl.SliceLayout(1, RED)

    pid_e = gl.program_id(0)
    pid_b = gl.program_id(1)
    d = gl.program_id(2) // SEGMENTS
    seg = gl.program_id(2) % SEGMENTS
    n_batch = gl.num_programs(1)
    n_eblocks = gl.num_programs(0)
    offs_e = pid_e * BLOCK_E + gl.arange(0, BLOCK_E, layout=CH)
    offs_n = gl.arange(0, N, layout=ST)
    mask_e = offs_e < E
    e_ld = gl.minimum(offs_e, E - 1)  # loads stay in bounds unmasked; stores past E are masked, and g = 0 there
    A2 = gl.load(A_ptr + (d * E + e_ld[None, :]) * N + offs_n[:, None]) * LOG2E
    Dv = gl.load(D_ptr + d * E + e_ld)
    bias = gl.load(bias_ptr + d * E + e_ld)

    st_p = states_ptr + ((d * n_batch + pid_b) * E + e_ld[None, :]) * (n_chunks * N) + offs_n[:, None]
    prog = ((d * n_batch + pid_b) * SEGMENTS + seg) * n_eblocks + pid_e
    scr = scratch_ptr + prog * ((CHUNK // GROUP) * BLOCK_E * N) + gl.arange(0, BLOCK_E, layout=CH)[None, :] * N + \
        offs_n[:, None]
    o_off = d * s_o_d + pid_b * s_o_b + offs_e * s_o_e
    dBC = ((d * n_batch + pid_b) * N + gl.arange(0, N, layout=RN)) * L  # dB, dC: (2, B, N, L) contiguous

    # staging loads: 8 channels (16 bytes in 16 bits) a lane, 4 / SPLIT lanes a token, 8 SPLIT tokens a warp
    LD_E: gl.constexpr = gl.BlockedLayout([1, 8], [8 * SPLIT, 4 // SPLIT], [1, NUM_WARPS], [1, 0])  # (CHUNK, BLOCK_E)
    LD_N: gl.constexpr = gl.BlockedLayout([1, 4], [8, 4], [NUM_WARPS, 1], [1, 0])  # (CHUNK, N)
    SMEM: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [1, 0])
    ROWS: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [0])
    e_l = pid_e * BLOCK_E + gl.arange(0, BLOCK_E, layout=gl.SliceLayout(0, LD_E))
    m_e = (e_l < E)[None, :]
    n_l = gl.arange(0, N, layout=gl.SliceLayout(0, LD_N))
    k_e = gl.arange(0, CHUNK, layout=gl.SliceLayout(1, LD_E))
    k_n = gl.arange(0, CHUNK, layout=gl.SliceLayout(1, LD_N))
    u_tp = (u_ptr + d * s_u_d + pid_b * s_u_b + e_l * s_u_e)[None, :]
    dt_tp = (dt_ptr + d * s_dt_d + pid_b * s_dt_b + e_l * s_dt_e)[None, :]
    z_tp = (z_ptr + pid_b * s_z_b + e_l * s_z_e)[None, :]
    g_tp = (g_ptr + pid_b * s_g_b + e_l * s_g_e)[None, :]
    B_tp = (B_ptr + d * s_B_d + pid_b * s_B_b + n_l * s_B_n)[None, :]
    C_tp = (C_ptr + d * s_C_d + pid_b * s_C_b + n_l * s_C_n)[None, :]
    u_s = gl.allocate_shared_memory(u_ptr.dtype.element_ty, [CHUNK, BLOCK_E], SMEM)
    dt_s = gl.allocate_shared_memory(dt_ptr.dtype.element_ty, [CHUNK, BLOCK_E], SMEM)
    z_s = gl.allocate_shared_memory(z_ptr.dtype.element_ty, [CHUNK, BLOCK_E], SMEM)
    g_s = gl.allocate_shared_memory(g_ptr.dtype.element_ty, [CHUNK, BLOCK_E], SMEM)
    B_s = gl.allocate_shared_memory(gl.float32, [CHUNK, N], SMEM)
    C_s = gl.allocate_shared_memory(gl.float32, [CHUNK, N], SMEM)
    u_r = u_s._reinterpret(u_ptr.dtype.element_ty, [CHUNK, BLOCK_E], ROWS)
    dt_r = dt_s._reinterpret(dt_ptr.dtype.element_ty, [CHUNK, BLOCK_E], ROWS)
    z_r = z_s._reinterpret(z_ptr.dtype.element_ty, [CHUNK, BLOCK_E], ROWS)
    g_r = g_s._reinterpret(g_ptr.dtype.element_ty, [CHUNK, BLOCK_E], ROWS)
    B_r = B_s._reinterpret(gl.float32, [CHUNK, N], ROWS)
    C_r = C_s._reinterpret(gl.float32, [CHUNK, N], ROWS)

    dh = gl.zeros((N, BLOCK_E), gl.float32, TILE)
    if SEGMENTS > 1:  # the dh entering this segment from the later ones' pieces (scan order), last first
        seg_row = ((d * n_batch + pid_b) * E + e_ld[None, :]) * (SEGMENTS * PIECES)
        for i in range(0, (SEGMENTS - 1 - seg) * PIECES):
            j = SEGMENTS * PIECES - 1 - i
            dh = gl.load(seg_dh_ptr + (seg_row + j) * N + offs_n[:, None]) + \
                _exp2(A2 * gl.load(seg_dt_ptr + seg_row + j)) * dh
        dh = gl.where(mask_e[None, :], dh, 0.0)  # channels past E read channel E - 1's summaries
    dA_acc = gl.zeros((N, BLOCK_E), gl.float32, TILE)
    dD_acc = gl.zeros((BLOCK_E,), gl.float32, CH)
    dbias_acc = gl.zeros((BLOCK_E,), gl.float32, CH)
    p_begin = seg * seg_chunks
    p_end = gl.minimum(n_chunks, p_begin + seg_chunks)
    for c in range(n_chunks - p_end, n_chunks - p_begin):  # this segment's chunks, in reverse scan order
        tc = (n_chunks - 1 - c) + d * (2 * c - n_chunks + 1)
        t_lo = tc * CHUNK
        n_tok = gl.minimum(L, t_lo + CHUNK) - t_lo
        _stage_chunk(u_s, dt_s, z_s, g_s, B_s, C_s, u_tp, dt_tp, z_tp, g_tp, B_tp, C_tp,
                     s_u_l, s_dt_l, s_z_l, s_g_l, s_B_l, s_C_l, t_lo, L, k_e, k_n, m_e, True)
        # the state entering each group of GROUP tokens (scan order), from the saved chunk-entry state, into the
        # scratch slots; steps past the chunk's last token are no-ops
        n_grp = (n_tok + GROUP - 1) // GROUP
        h = gl.load(st_p + tc * N)
        for q in range(0, n_grp):
            gl.store(scr + q * (BLOCK_E * N), h)
            for step in gl.static_range(GROUP):
                h = _walk_token_a(h, GROUP * q + step, n_tok, d, u_r, dt_r, B_r, A2, bias, CH, ST, POLY)[0]
        # the groups in reverse scan order: a group's states again, in registers, then its tokens backward
        for qq in range(0, n_grp):
            q = n_grp - 1 - qq
            j0 = GROUP * q
            h0 = gl.load(scr + q * (BLOCK_E * N))
            h1, a1, t1, s1 = _walk_token_a(h0, j0, n_tok, d, u_r, dt_r, B_r, A2, bias, CH, ST, POLY)
            h2, a2, t2, s2 = _walk_token_a(h1, j0 + 1, n_tok, d, u_r, dt_r, B_r, A2, bias, CH, ST, POLY)
            if GROUP == 4:
                h3, a3, t3, s3 = _walk_token_a(h2, j0 + 2, n_tok, d, u_r, dt_r, B_r, A2, bias, CH, ST, POLY)
                h4, a4, t4, s4 = _walk_token_a(h3, j0 + 3, n_tok, d, u_r, dt_r, B_r, A2, bias, CH, ST, POLY)
                dh, dA_acc, dD_acc, dbias_acc = _token_backward(
                    h4, dh, dA_acc, dD_acc, dbias_acc, j0 + 3, n_tok, d, t_lo, u_r, z_r, g_r, B_r, C_r, A2,
                    Dv, mask_e, o_off, s_o_l, du_ptr, ddt_ptr, dz_ptr, dB_ptr, dC_ptr, dBC, a4, t4, s4,
                    CH, ST, RED, CHAINS)
                dh, dA_acc, dD_acc, dbias_acc = _token_backward(
                    h3, dh, dA_acc, dD_acc, dbias_acc, j0 + 2, n_tok, d, t_lo, u_r, z_r, g_r, B_r, C_r, A2,
                    Dv, mask_e, o_off, s_o_l, du_ptr, ddt_ptr, dz_ptr, dB_ptr, dC_ptr, dBC, a3, t3, s3,
                    CH, ST, RED, CHAINS)
            dh, dA_acc, dD_acc, dbias_acc = _token_backward(
                h2, dh, dA_acc, dD_acc, dbias_acc, j0 + 1, n_tok, d, t_lo, u_r, z_r, g_r, B_r, C_r, A2,
                Dv, mask_e, o_off, s_o_l, du_ptr, ddt_ptr, dz_ptr, dB_ptr, dC_ptr, dBC, a2, t2, s2,
                CH, ST, RED, CHAINS)
            dh, dA_acc, dD_acc, dbias_acc = _token_backward(
                h1, dh, dA_acc, dD_acc, dbias_acc, j0, n_tok, d, t_lo, u_r, z_r, g_r, B_r, C_r, A2,
                Dv, mask_e, o_off, s_o_l, du_ptr, ddt_ptr, dz_ptr, dB_ptr, dC_ptr, dBC, a1, t1, s1,
                CH, ST, RED, CHAINS)
    A_off = (d * E + offs_e[None, :]) * N + offs_n[:, None]
    gl.atomic_add(dA_ptr + A_off, dA_acc, mask=mask_e[None, :], sem="relaxed")
    gl.atomic_add(dD_ptr + d * E + offs_e, dD_acc, mask=mask_e, sem="relaxed")
    gl.atomic_add(dbias_ptr + d * E + offs_e, dbias_acc, mask=mask_e, sem="relaxed")


@gluon.jit
def _scan_bwd_seg_gluon_kernel(
    dt_ptr, C_ptr, z_ptr, A_ptr, bias_ptr, g_ptr, seg_dh_ptr, seg_dt_ptr,
    E, L, n_chunks, seg_chunks,
    s_dt_d, s_dt_b, s_dt_e, s_dt_l,
    s_C_d, s_C_b, s_C_n, s_C_l,
    s_z_b, s_z_e, s_z_l,
    s_g_b, s_g_e, s_g_l,
    N: gl.constexpr, CHUNK: gl.constexpr, SEGMENTS: gl.constexpr, NUM_WARPS: gl.constexpr,
    POLY: gl.constexpr = False, PIECES: gl.constexpr = 1,
):
    """``fused_bimamba_kernels._scan_bwd_seg_kernel`` (same arguments but the tile: BLOCK_E = 32 NUM_WARPS) with a
    channel and its N states a lane, the operands staged a chunk at a time; and each segment's summary in PIECES
    pieces of ``ceil(seg_chunks / PIECES)`` chunks (the last ones shorter or empty), a program each: grid (channel
    blocks, batch, 2 (SEGMENTS - 1) PIECES), rows of SEGMENTS x PIECES summaries a channel, which the walk
    combines (its PIECES). More, shorter programs: one program's walk over its tokens is a chain of latencies."""
    BLOCK_E: gl.constexpr = 32 * NUM_WARPS
    TILE: gl.constexpr = gl.BlockedLayout([N, 1], [1, 32], [1, NUM_WARPS], [0, 1])
    CH: gl.constexpr = gl.SliceLayout(0, TILE)
    ST: gl.constexpr = gl.SliceLayout(1, TILE)
    pid_e = gl.program_id(0)
    pid_b = gl.program_id(1)
    d = gl.program_id(2) // ((SEGMENTS - 1) * PIECES)
    seg = gl.program_id(2) % ((SEGMENTS - 1) * PIECES) // PIECES + 1
    piece = gl.program_id(2) % PIECES
    n_batch = gl.num_programs(1)
    offs_e = pid_e * BLOCK_E + gl.arange(0, BLOCK_E, layout=CH)
    offs_n = gl.arange(0, N, layout=ST)
    mask_e = offs_e < E
    e_ld = gl.minimum(offs_e, E - 1)
    A2 = gl.load(A_ptr + (d * E + e_ld[None, :]) * N + offs_n[:, None]) * LOG2E
    bias = gl.load(bias_ptr + d * E + e_ld)

    LD_E: gl.constexpr = gl.BlockedLayout([1, 8], [8, 4], [1, NUM_WARPS], [1, 0])
    LD_N: gl.constexpr = gl.BlockedLayout([1, 4], [8, 4], [NUM_WARPS, 1], [1, 0])
    SMEM: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [1, 0])
    ROWS: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [0])
    e_l = pid_e * BLOCK_E + gl.arange(0, BLOCK_E, layout=gl.SliceLayout(0, LD_E))
    m_e = (e_l < E)[None, :]
    n_l = gl.arange(0, N, layout=gl.SliceLayout(0, LD_N))
    k_e = gl.arange(0, CHUNK, layout=gl.SliceLayout(1, LD_E))
    k_n = gl.arange(0, CHUNK, layout=gl.SliceLayout(1, LD_N))
    dt_tp = (dt_ptr + d * s_dt_d + pid_b * s_dt_b + e_l * s_dt_e)[None, :]
    z_tp = (z_ptr + pid_b * s_z_b + e_l * s_z_e)[None, :]
    g_tp = (g_ptr + pid_b * s_g_b + e_l * s_g_e)[None, :]
    C_tp = (C_ptr + d * s_C_d + pid_b * s_C_b + n_l * s_C_n)[None, :]
    dt_s = gl.allocate_shared_memory(dt_ptr.dtype.element_ty, [CHUNK, BLOCK_E], SMEM)
    z_s = gl.allocate_shared_memory(z_ptr.dtype.element_ty, [CHUNK, BLOCK_E], SMEM)
    g_s = gl.allocate_shared_memory(g_ptr.dtype.element_ty, [CHUNK, BLOCK_E], SMEM)
    C_s = gl.allocate_shared_memory(gl.float32, [CHUNK, N], SMEM)
    dt_r = dt_s._reinterpret(dt_ptr.dtype.element_ty, [CHUNK, BLOCK_E], ROWS)
    z_r = z_s._reinterpret(z_ptr.dtype.element_ty, [CHUNK, BLOCK_E], ROWS)
    g_r = g_s._reinterpret(g_ptr.dtype.element_ty, [CHUNK, BLOCK_E], ROWS)
    C_r = C_s._reinterpret(gl.float32, [CHUNK, N], ROWS)

    dh = gl.zeros((N, BLOCK_E), gl.float32, TILE)
    dt_sum = gl.zeros((BLOCK_E,), gl.float32, CH)
    piece_chunks = (seg_chunks + PIECES - 1) // PIECES
    p_begin = seg * seg_chunks + gl.minimum(piece * piece_chunks, seg_chunks)
    p_end = gl.minimum(n_chunks, seg * seg_chunks + gl.minimum((piece + 1) * piece_chunks, seg_chunks))
    for c in range(n_chunks - p_end, n_chunks - p_begin):
        tc = (n_chunks - 1 - c) + d * (2 * c - n_chunks + 1)  # as in the walk
        t_lo = tc * CHUNK
        n_tok = gl.minimum(L, t_lo + CHUNK) - t_lo
        _stage_chunk(dt_s, dt_s, z_s, g_s, C_s, C_s, dt_tp, dt_tp, z_tp, g_tp, C_tp, C_tp,
                     s_dt_l, s_dt_l, s_z_l, s_g_l, s_C_l, s_C_l, t_lo, L, k_e, k_n, m_e, False)
        for jj in range(0, n_tok):
            j = n_tok - 1 - jj
            k = j + d * (n_tok - 1 - 2 * j)
            dt = _softplus(dt_r.index(k).load(CH).to(gl.float32) + bias, POLY)
            zz = z_r.index(k).load(CH).to(gl.float32)
            g = gl.where(mask_e, g_r.index(k).load(CH).to(gl.float32), 0.0)
            dy = g * zz * _sigmoid(zz) * 0.5
            dh = (dh + C_r.index(k).load(ST)[:, None] * dy[None, :]) * _exp2(dt[None, :] * A2)
            dt_sum += dt
    row = ((d * n_batch + pid_b) * E + offs_e) * (SEGMENTS * PIECES) + seg * PIECES + piece
    gl.store(seg_dh_ptr + row[None, :] * N + offs_n[:, None], dh, mask=mask_e[None, :])
    gl.store(seg_dt_ptr + row, dt_sum, mask=mask_e)
