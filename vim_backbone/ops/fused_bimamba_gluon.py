"""The fused scan's forward walk written in Gluon, Triton's explicit-layout dialect (CUDA only).

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
it off).
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
    # torch's softplus (threshold 20), max(x, 0) + ln(1 + e) with e = exp(-|x|) in (0, 1], as the Triton
    # kernels compute it; POLY: ln(1 + e) = e q(e) with q of degree 8 (fit to ln(1 + e) / e on [0, 1] at
    # Chebyshev nodes; relative error 2.0e-7 in fp32, that of MUFU.LG2) on the FMA pipe, for one MUFU less
    e = _exp2(-gl.abs(x) * LOG2E)
    if POLY:
        q = e * LOG1P_Q[8] + LOG1P_Q[7]
        for i in gl.static_range(7):  # Horner, down to the constant term
            q = q * e + LOG1P_Q[6 - i]
        log1p_e = q * e
    else:
        log1p_e = _ptx_f32(1.0 + e, "lg2.approx.ftz.f32 $0, $1;") * LN2
    return gl.where(x > 20.0, x, gl.maximum(x, 0.0) + log1p_e)


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
def _step(h, dt_sum, A2, bias, Dv, u, dt_raw, Bt, Ct, t, valid, d, L, y_p, s_y_l, st_p, mask_e,
          N: gl.constexpr, CHUNK: gl.constexpr, STORE_STATES: gl.constexpr, WRITE_Y: gl.constexpr,
          POLY: gl.constexpr):
    if STORE_STATES:  # the state entering each chunk in scan order (see the Triton kernel)
        entry = (((t + d) % CHUNK) == 0) | ((d == 1) & (t == L - 1))
        gl.store(st_p + (t // CHUNK) * N, h, mask=mask_e[None, :] & (valid & entry))
    dt = gl.where(valid, _softplus(dt_raw + bias, POLY), 0.0)
    h = _exp2(dt[None, :] * A2) * h + Bt[:, None] * (dt * u)[None, :]
    if WRITE_Y:  # the sum over the states is within the thread
        y = gl.sum(h * Ct[:, None], axis=0) + Dv * u
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
):
    """``_scan_fwd_kernel`` with the state tile laid out a channel a lane: SPLIT = 1, BLOCK_E = 32 NUM_WARPS.
    With SPLIT = 2 or 4 a channel's N states are split over that many neighbouring lanes (BLOCK_E =
    32 NUM_WARPS / SPLIT): more programs, at the price of the per-channel work done SPLIT times and a
    shuffle or two in the output's sum over the states. HEAD: as in the Triton kernel, segment 0's output
    walk hands on its end state."""
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
                              y_p, s_y_l, st_p, mask_e, N, CHUNK, STORE_STATES, WRITE_Y, POLY)
    if not WRITE_Y:
        gl.store(seg_h_p + seg * N, h, mask=mask_e[None, :])
        gl.store(seg_dt_p + seg, dt_sum, mask=mask_e)
    elif HEAD:
        gl.store(seg_h_p + (SUB - 1) * N, h, mask=mask_e[None, :] & (seg == 0))
        gl.store(seg_dt_p + SUB - 1, dt_sum, mask=mask_e & (seg == 0))
