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


class GraphedForward:
    """CUDA graphs of one module's inference forward, keyed by input shape (see the module docstring).

    Args:
        max_graphs (int): graphs kept at once. Defaults to 4.
        min_calls (int): calls of a shape before it is captured (>= 1). Defaults to 2.
        capture (callable, optional): ``capture(fn, x) -> (graph, static_x, static_out)``; the CUDA capture by
            default (tests pass a stand-in).
    """

    def __init__(self, max_graphs: int = 4, min_calls: int = 2, capture: Optional[Callable] = None):
        if max_graphs < 1 or min_calls < 1:
            raise ValueError(f"max_graphs and min_calls must be >= 1, got {max_graphs}, {min_calls}")
        self.max_graphs = max_graphs
        self.min_calls = min_calls
        self._capture = capture or _capture
        self.graphs: "OrderedDict[tuple, tuple]" = OrderedDict()
        self.calls = {}  # key -> calls seen before its capture
        self._state = None  # the module's parameters and buffers the graphs were captured with

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

    def clear(self) -> None:
        self.graphs.clear()
        self.calls.clear()
        self._state = None

    def __call__(self, module: nn.Module, fn: Callable, x: torch.Tensor):
        """``fn(x)``, the forward of ``module``, from a graph where one is kept for this input, else eagerly."""
        if not self.usable(module, x):
            return fn(x)
        state = self.module_state(module)
        if state != self._state:
            self.clear()
            self._state = state
        key = (tuple(x.shape), tuple(x.stride()), x.dtype, x.device, _autocast_key(x.device.type),
               torch.is_inference_mode_enabled())
        entry = self.graphs.get(key)
        if entry is None:
            seen = self.calls.get(key, 0) + 1
            if seen < self.min_calls:
                if len(self.calls) >= MAX_COUNTED_SHAPES:  # inputs of ever-new sizes: forget the counts
                    self.calls.clear()
                self.calls[key] = seen
                return fn(x)
            self.calls.pop(key, None)
            while len(self.graphs) >= self.max_graphs:
                self.graphs.popitem(last=False)  # the least recently used graph, and its pool
            entry = self.graphs[key] = self._capture(fn, x)
        else:
            self.graphs.move_to_end(key)
        graph, static_x, out = entry
        static_x.copy_(x)
        with on_device_of(x):  # the input's GPU (a no-op for the tests' CPU stand-ins)
            graph.replay()
        return _copy_out(out)
