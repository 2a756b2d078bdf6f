"""Inference forwards replayed from CUDA graphs, one graph per input shape.

Without a graph, a small-batch Vim forward is bound by the host: each of its 24 blocks enqueues about a dozen
kernels (Triton launches cost tens of microseconds of Python each), more host time than the GPU needs for
them at batch 1-2. A CUDA graph enqueues the whole forward at once. :class:`GraphedForward` keeps such graphs
for a module's forward and replays them for inputs of a shape it has seen before:

- only for inference (the module in eval mode, gradients off) on CUDA, outside any other capture;
- a shape is captured the ``min_calls``-th time it is seen (two eager warm-up calls, then the capture on the
  same static input), so inputs of ever-new sizes (detection with ``keep_ratio``) stay eager and pay nothing
  but a dictionary lookup;
- at most ``max_graphs`` graphs are kept (least recently used goes first), each with its own memory pool
  holding one forward's activations;
- the graphs are dropped when a parameter or buffer of the module changes (an optimizer step, a
  ``load_state_dict``, a ``.to()``), or the autocast setting differs (it is part of the key);
- outputs are copied out of the graph's pool, so a caller may keep them across calls.

The replayed kernels are the captured ones, with the same launch settings: outputs equal the eager forward's.
"""
import contextlib
from collections import OrderedDict
from typing import Callable, Optional

import torch
import torch.nn as nn

from ..ops.fused_bimamba import on_device_of

MAX_COUNTED_SHAPES = 256


def _autocast_key(device_type: str = "cuda") -> tuple:
    if not torch.is_autocast_enabled(device_type):
        return (False,)
    return True, torch.get_autocast_dtype(device_type), torch.is_autocast_cache_enabled()


def _capture(fn: Callable, x: torch.Tensor, warmup: int = 2):
    """``fn`` captured in a CUDA graph on a static copy of ``x``: (graph, static input, static outputs)."""
    static_x = x.clone()
    with torch.cuda.device(x.device):  # the input's GPU, whichever is current
        main = torch.cuda.current_stream()
        side = torch.cuda.Stream()
        side.wait_stream(main)
        with torch.cuda.stream(side):  # warm-up off the capture (lazy initialisation, Triton compiles)
            for _ in range(warmup):
                fn(static_x)
        main.wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # captured on a stream of the input's GPU: torch.cuda.graph's own default stream belongs to the GPU
        # that was current at the process's first capture, and a capture on it records nothing from another GPU
        # thread_local: CUDA calls of other threads (a DataLoader's pin-memory thread allocating pinned memory)
        # do not break the capture, which happens mid-loop, the second time a shape is seen
        with torch.cuda.graph(graph, stream=side, capture_error_mode="thread_local"):
            out = fn(static_x)
    return graph, static_x, out


def _copy_out(out):
    if isinstance(out, torch.Tensor):
        return out.clone()
    if isinstance(out, (tuple, list)):
        return type(out)(_copy_out(o) for o in out)
    if isinstance(out, dict):
        return {k: _copy_out(v) for k, v in out.items()}
    raise TypeError(f"a graphed forward must return tensors (or tuples / lists / dicts of them), got {type(out)}")


class _ShapeGraphs:
    """What the graph caches share: graphs kept by input key, at most ``max_graphs`` (least recently used out),
    a key captured the ``min_calls``-th time it is seen, and all dropped when :meth:`module_state` changes."""

    def __init__(self, max_graphs: int, min_calls: int):
        if max_graphs < 1 or min_calls < 1:
            raise ValueError(f"max_graphs and min_calls must be >= 1, got {max_graphs}, {min_calls}")
        self.max_graphs = max_graphs
        self.min_calls = min_calls
        self.graphs: "OrderedDict[tuple, object]" = OrderedDict()
        self.calls = {}  # key -> calls seen before its capture
        self._state = None  # the module's parameters and buffers the graphs were captured with

    @staticmethod
    def module_state(module: nn.Module) -> tuple:
        raise NotImplementedError

    def clear(self) -> None:
        self.graphs.clear()
        self.calls.clear()
        self._state = None

    def _dropped(self, key: tuple) -> None:
        """Called for a graph the cache lets go of (least recently used)."""

    def _entry(self, module: nn.Module, key: tuple, make: Callable[[], object]):
        """The graph kept for ``key``, made with ``make()`` the ``min_calls``-th time the key is seen; None (run
        eagerly) before that."""
        state = self.module_state(module)
        if state != self._state:
            self.clear()
            self._state = state
        entry = self.graphs.get(key)
        if entry is None:
            seen = self.calls.get(key, 0) + 1
            if seen < self.min_calls:
                if len(self.calls) >= MAX_COUNTED_SHAPES:  # inputs of ever-new sizes: forget the counts
                    self.calls.clear()
                self.calls[key] = seen
                return None
            self.calls.pop(key, None)
            while len(self.graphs) >= self.max_graphs:
                old, _ = self.graphs.popitem(last=False)  # the least recently used graph, and its pool
                self._dropped(old)
            entry = self.graphs[key] = make()
        else:
            self.graphs.move_to_end(key)
        return entry


class GraphedForward(_ShapeGraphs):
    """CUDA graphs of one module's inference forward, keyed by input shape (see the module docstring).

    Args:
        max_graphs (int): graphs kept at once. Defaults to 4.
        min_calls (int): calls of a shape before it is captured (>= 1). Defaults to 2.
        capture (callable, optional): ``capture(fn, x) -> (graph, static_x, static_out)``; the CUDA capture by
            default (tests pass a stand-in).
    """

    def __init__(self, max_graphs: int = 4, min_calls: int = 2, capture: Optional[Callable] = None):
        super().__init__(max_graphs, min_calls)
        self._capture = capture or _capture

    def __getstate__(self):  # copies and pickles keep the settings, not the graphs
        return dict(max_graphs=self.max_graphs, min_calls=self.min_calls)

    def __setstate__(self, state):
        self.__init__(**state)

    def usable(self, module: nn.Module, x: torch.Tensor) -> bool:
        """Whether this call may run from a graph: inference on a CUDA tensor, not inside another capture, and
        not in a ``nn.DataParallel`` replica (its replicas, rebuilt each call, share this cache and run in
        threads: they would drop each other's graphs and capture side by side)."""
        return (x.is_cuda and not module.training and not torch.is_grad_enabled()
                and not getattr(module, "_is_replica", False) and not torch.cuda.is_current_stream_capturing())

    @staticmethod
    def module_state(module: nn.Module) -> tuple:
        """Identity and version of every parameter and buffer: a graph reads them where they were."""
        return tuple((t.data_ptr(), t._version) for t in (*module.parameters(), *module.buffers()))

    def __call__(self, module: nn.Module, fn: Callable, x: torch.Tensor):
        """``fn(x)``, the forward of ``module``, from a graph where one is kept for this input, else eagerly."""
        if not self.usable(module, x):
            return fn(x)
        key = (tuple(x.shape), tuple(x.stride()), x.dtype, x.device, _autocast_key(x.device.type),
               torch.is_inference_mode_enabled())
        entry = self._entry(module, key, lambda: self._capture(fn, x))
        if entry is None:
            return fn(x)
        graph, static_x, out = entry
        static_x.copy_(x)
        with on_device_of(x):  # the input's GPU (a no-op for the tests' CPU stand-ins)
            graph.replay()
        return _copy_out(out)


class _Step(nn.Module):
    """``fn(x)`` as a module whose parameters are ``owner``'s, so that :func:`torch.func.functional_call` can run
    it on stand-ins for them."""

    def __init__(self, owner: nn.Module, fn: Callable):
        super().__init__()
        self.owner = owner
        self.fn = fn

    def forward(self, x: torch.Tensor):
        return self.fn(x)


class TrainingGraph:
    """One training step of ``fn`` (the forward of ``module``) for inputs like ``x``: its forward and its backward,
    each captured in a CUDA graph (``capture=True``), or run eagerly (``capture=False``: the same bookkeeping on
    any device, which the CPU tests check).

    The step runs on *aliases* of the parameters: ``p.detach().requires_grad_(p.requires_grad)``, which share the
    parameters' storage (in-place updates, an optimizer step or ``load_state_dict``, are read where they are) and
    are leaves of their own. So the capture makes its own gradient accumulators on its own stream, whatever graph
    of the caller's is still alive, and the backward graph writes the aliases' gradients into static tensors.
    :meth:`__call__` returns the outputs through one autograd function whose inputs are ``x`` and the real
    parameters: autograd hands the static gradients on to the parameters' ``.grad`` (and to
    DistributedDataParallel's hooks)."""

    def __init__(self, module: nn.Module, fn: Callable, x: torch.Tensor, warmup: int = 2, capture: bool = True):
        self.capture = capture
        self.static_x = x.detach().clone()
        named = list(module.named_parameters())
        self.params = tuple(p for _, p in named)
        self.alias = {"owner." + n: p.detach().requires_grad_(p.requires_grad) for n, p in named}
        self.step = _Step(module, fn)
        self.wanted = [a for a in self.alias.values() if a.requires_grad]
        self.wanted_index = [i for i, p in enumerate(self.params) if p.requires_grad]
        if capture:
            self._capture(x, warmup)

    def _forward(self):
        from torch.func import functional_call
        out = functional_call(self.step, self.alias, (self.static_x,), strict=False)
        flat, spec = torch.utils._pytree.tree_flatten(out)
        return flat, spec

    def _backward(self, outs, grad_outs):
        pairs = [(o, g) for o, g in zip(outs, grad_outs) if o.requires_grad and g is not None]
        if not pairs or not self.wanted:
            return [None] * len(self.wanted)
        return list(torch.autograd.grad([o for o, _ in pairs], self.wanted, [g for _, g in pairs],
                                        allow_unused=True))

    def _capture(self, x: torch.Tensor, warmup: int):
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.cuda.device(x.device))
            if torch.is_autocast_enabled("cuda"):  # no cast cache: the casts are in the graph, made every replay
                stack.enter_context(torch.autocast("cuda", dtype=torch.get_autocast_dtype("cuda"),
                                                   cache_enabled=False))
            main = torch.cuda.current_stream()
            side = torch.cuda.Stream()
            side.wait_stream(main)
            with torch.cuda.stream(side):  # warm-up off the capture (lazy initialisation, Triton compiles)
                for _ in range(warmup):
                    outs, _ = self._forward()
                    self._backward(outs, [torch.ones_like(o) if o.requires_grad else None for o in outs])
            torch.cuda.synchronize()
            pool = torch.cuda.graph_pool_handle()
            self.fwd_graph, self.bwd_graph = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
            # thread_local: CUDA calls of other threads (a DataLoader's pin-memory thread) do not break the capture
            with torch.cuda.graph(self.fwd_graph, pool=pool, stream=side, capture_error_mode="thread_local"):
                self.outs, self.spec = self._forward()
            self.grad_outs = [torch.empty_like(o) if o.requires_grad else None for o in self.outs]
            with torch.cuda.graph(self.bwd_graph, pool=pool, stream=side, capture_error_mode="thread_local"):
                self.grads = self._backward(self.outs, self.grad_outs)
            main.wait_stream(side)

    def run_forward(self, x: torch.Tensor):
        self.static_x.copy_(x)
        if self.capture:
            with torch.cuda.device(x.device):
                self.fwd_graph.replay()
        else:  # inside the autograd function's forward, where gradients are off; a capture records with them on
            with torch.enable_grad():
                self.outs, self.spec = self._forward()
        return self.outs

    def run_backward(self, grads):
        if self.capture:
            for buf, g in zip(self.grad_outs, grads):
                if buf is not None:
                    buf.copy_(g)
            with torch.cuda.device(self.static_x.device):
                self.bwd_graph.replay()
            found = self.grads
        else:  # the replay's semantics: the gradients land in the same tensors every step
            found = self._backward(self.outs, grads)
            if getattr(self, "grads", None) is None:
                self.grads = [None if g is None else torch.empty_like(g) for g in found]
            for buf, g in zip(self.grads, found):
                if buf is not None:
                    buf.copy_(g)
            found = self.grads
        out = [None] * len(self.params)
        for i, g in zip(self.wanted_index, found):
            out[i] = g
        return out

    def __call__(self, x: torch.Tensor):
        flat = _Replay.apply(self, x, *self.params)
        return torch.utils._pytree.tree_unflatten(list(flat), self.spec)


class _Replay(torch.autograd.Function):
    """The graphs' outputs as a function of the input and the real parameters."""

    @staticmethod
    def forward(ctx, graph: TrainingGraph, x: torch.Tensor, *params):
        ctx.graph = graph
        outs = graph.run_forward(x)
        ctx.n_outs = len(outs)
        return tuple(o.detach() for o in outs)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grads):
        return (None, None, *ctx.graph.run_backward(grads))


class GraphedTraining(_ShapeGraphs):
    """CUDA graphs of one module's training forward and its backward, keyed by input shape.

    A Vim training step enqueues its kernels from Python one by one: about 105 ms of host time a step for
    Vim-Ti's forward and backward (an H200 host, docs/RESULTS.md, session 14), longer than the GPU's work at the
    batches of the detection and segmentation recipes. Each :class:`TrainingGraph` here replays the forward in one
    launch, and the backward in one launch when autograd reaches it; the parameters' gradients come out of the
    backward and accumulate into ``.grad`` as usual (DistributedDataParallel's hooks included). The rules:

    - only for training (the module in training mode, gradients on) on CUDA, for an input that does not need a
      gradient (images), without gradient checkpointing (``with_cp``), outside another capture and outside
      ``nn.DataParallel`` replicas;
    - a shape is captured the ``min_calls``-th time it is seen (the capture runs the step ``warmup`` times more,
      without touching ``.grad``), at most ``max_graphs`` are kept, and all are dropped when a parameter or buffer
      is replaced (``.to()``, a new ``requires_grad``); in-place updates (optimizer steps, ``load_state_dict``) are
      read by the graphs where they are;
    - the autocast setting is part of the key;
    - each graph has one set of outputs and saved activations: a second forward of the same shape before the
      first one's backward runs eagerly (the graph is busy), with a warning the first time. Detectors and
      segmentors call the backbone once a step;
    - random numbers (drop path) are drawn in the graph, fresh each replay.

    The outputs are the graph's own tensors, overwritten by the next replay of that shape.
    """

    def __init__(self, max_graphs: int = 2, min_calls: int = 2, warmup: int = 2, make: Optional[Callable] = None):
        super().__init__(max_graphs, min_calls)
        self.busy = set()  # keys whose last forward's backward has not run
        self.warmup = warmup
        self._make = make or TrainingGraph  # make(module, fn, x, warmup)
        self._warned = False

    def __getstate__(self):  # copies and pickles keep the settings, not the graphs
        return dict(max_graphs=self.max_graphs, min_calls=self.min_calls, warmup=self.warmup)

    def __setstate__(self, state):
        self.__init__(**state)

    def usable(self, module: nn.Module, x: torch.Tensor) -> bool:
        """Training (gradients on) on a CUDA input that needs no gradient, without gradient checkpointing (its
        recomputation saves and restores the RNG state, which a capture does not allow), outside another capture
        and outside ``nn.DataParallel`` replicas."""
        return (x.is_cuda and module.training and torch.is_grad_enabled() and not x.requires_grad
                and not getattr(module, "with_cp", False) and not getattr(module, "_is_replica", False)
                and not torch.cuda.is_current_stream_capturing())

    @staticmethod
    def module_state(module: nn.Module) -> tuple:
        """Identity (and for parameters, ``requires_grad``) of every parameter and buffer: the graphs read them
        where they were at the capture, and differentiate the parameters that required a gradient then."""
        return (tuple((p.data_ptr(), p.requires_grad) for p in module.parameters()),
                tuple(b.data_ptr() for b in module.buffers()))

    def clear(self) -> None:
        super().clear()
        self.busy.clear()

    def _dropped(self, key: tuple) -> None:
        self.busy.discard(key)

    def __call__(self, module: nn.Module, fn: Callable, x: torch.Tensor):
        """``fn(x)``, the forward of ``module``, from a graph where one is kept for this input, else eagerly."""
        if not self.usable(module, x):
            return fn(x)
        key = (tuple(x.shape), tuple(x.stride()), x.dtype, x.device, _autocast_key(x.device.type))
        graphed = self._entry(module, key, lambda: self._make(module, fn, x, self.warmup))
        if graphed is None:
            return fn(x)
        if key in self.busy:
            if not self._warned:
                self._warned = True
                import warnings
                warnings.warn("cuda_graph_train: a second forward of one input shape came before the first one's "
                              "backward; running it eagerly (a graph holds one step's activations)", stacklevel=3)
            return fn(x)
        out = graphed(x)
        node = next((t.grad_fn for t in _tensors(out) if t.grad_fn is not None), None)
        if node is not None:  # no backward will come otherwise
            self.busy.add(key)
            node.register_hook(lambda *_: self.busy.discard(key))
        return out


def _tensors(out):
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _tensors(o)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in _tensors(o)]
    return []
