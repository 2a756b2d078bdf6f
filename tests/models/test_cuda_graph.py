"""Inference from CUDA graphs (``cuda_graph=True``): the graph cache's rules on CPU with a stand-in capture,
and the real capture against the eager forward on a GPU."""
import copy

import pytest
import torch

import vim_backbone as vim
from vim_backbone.models.cuda_graph import GraphedForward, GraphedTraining, TrainingGraph

TINY = dict(embed_dim=32, depth=2, d_state=4, img_size=32, num_classes=5, scan_backend="reference")


class _Replay:
    """A stand-in graph: replay recomputes the captured function on the static input, in place."""

    def __init__(self, fn, static_x, out):
        self.fn, self.static_x, self.out = fn, static_x, out
        self.replays = 0

    def replay(self):
        self.replays += 1
        self.out.copy_(self.fn(self.static_x))


def _fake_capture(log):
    def capture(fn, x):
        static_x = x.clone()
        out = fn(static_x)
        log.append(tuple(x.shape))
        return _Replay(fn, static_x, out), static_x, out
    return capture


def _graphed_cpu(monkeypatch, model, max_graphs=2, min_calls=2):
    log = []
    g = GraphedForward(max_graphs=max_graphs, min_calls=min_calls, capture=_fake_capture(log))
    # CPU tensors stand in for CUDA ones: the rest of the rule (eval, no gradients) holds
    monkeypatch.setattr(g, "usable", lambda m, x: not m.training and not torch.is_grad_enabled())
    model.graphed = g
    return g, log


def test_graph_cache_rules(monkeypatch):
    torch.manual_seed(0)
    model = vim.VisionMamba(**TINY).eval()
    g, log = _graphed_cpu(monkeypatch, model)
    x1, x2, x3 = (torch.randn(b, 3, 32, s) for b, s in ((2, 32), (1, 32), (1, 48)))
    with torch.no_grad():
        want = model._forward(x1)
        first = model(x1)  # seen once: eager, nothing captured
        assert log == [] and torch.equal(first, want)
        second = model(x1)  # the second call captures
        assert log == [(2, 3, 32, 32)] and torch.equal(second, want)
        second.zero_()  # outputs are copies: the next call does not see this
        third = model(x1)
        assert log == [(2, 3, 32, 32)] and torch.equal(third, want)
        assert g.graphs[next(iter(g.graphs))][0].replays == 2
        for x in (x2, x2, x3, x3):  # two more shapes: the least recently used graph goes
            model(x)
        assert log[1:] == [(1, 3, 32, 32), (1, 3, 32, 48)] and len(g.graphs) == 2
        assert [k[0] for k in g.graphs] == [(1, 3, 32, 32), (1, 3, 32, 48)]
        # a parameter changed in place: every graph goes at the next call, the output follows the new weights
        model.head.bias.add_(1.0)
        assert torch.equal(model(x2), model._forward(x2)) and not g.graphs
        model(x2)
        assert len(g.graphs) == 1 and torch.equal(model(x2), model._forward(x2))
    # training, or gradients on: eager, the cache untouched
    model(x2).sum()
    assert len(log) == 4
    model.train()
    with torch.no_grad():
        model(x1), model(x1)
    assert len(log) == 4


def test_graph_cache_key_includes_autocast_and_inference_mode(monkeypatch):
    model = vim.VisionMamba(**TINY).eval()
    g, log = _graphed_cpu(monkeypatch, model, max_graphs=4, min_calls=1)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(x)
    with torch.inference_mode():
        model(x)
    assert len(log) == 3 and len(g.graphs) == 3


def test_graphed_model_copies_without_graphs(monkeypatch):
    model = vim.VisionMamba(**TINY, cuda_graph=True, cuda_graph_max_shapes=3).eval()
    assert isinstance(model.graphed, GraphedForward) and model.graphed.max_graphs == 3
    g, log = _graphed_cpu(monkeypatch, model, max_graphs=3, min_calls=1)
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32))
    twin = copy.deepcopy(model)
    assert len(model.graphed.graphs) == 1 and not twin.graphed.graphs
    assert twin.graphed.max_graphs == 3 and twin.graphed.min_calls == 1
    assert vim.VisionMamba(**TINY).graphed is None  # off by default
    with pytest.raises(ValueError, match="max_graphs"):
        GraphedForward(max_graphs=0)


class _CudaLike:
    """Stands in for a CUDA input (an image batch): ``usable`` reads only ``is_cuda`` and ``requires_grad``."""
    is_cuda = True
    requires_grad = False


def test_graphs_only_for_cuda_inference_outside_data_parallel_replicas(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: False)  # no CUDA here
    m = vim.VisionMamba(**TINY).eval()
    g = GraphedForward()
    with torch.no_grad():
        assert g.usable(m, _CudaLike())
        assert not g.usable(m, torch.zeros(1))  # a CPU input
        m._is_replica = True  # what nn.DataParallel's replicate() sets on each replica
        assert not g.usable(m, _CudaLike())
    del m._is_replica
    assert not g.usable(m, _CudaLike())  # gradients on
    with torch.no_grad():
        assert not g.usable(m.train(), _CudaLike())


def test_graphed_forward_stays_eager_on_cpu():
    model = vim.VisionMamba(**TINY, cuda_graph=True).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        outs = [model(x) for _ in range(3)]
    assert not model.graphed.graphs and all(torch.equal(o, outs[0]) for o in outs)


def test_mm_backbone_takes_cuda_graph():
    pytest.importorskip("mmengine")
    from vim_backbone.mm.backbone import VimBackbone
    arch = dict(embed_dim=32, depth=4, d_state=4)
    m = VimBackbone(arch=arch, img_size=32, out_indices=(1, 3), tap_scales=(2, 1), cuda_graph=True,
                    cuda_graph_max_shapes=2, scan_backend="reference").eval()
    assert m.graphed.max_graphs == 2
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        feats = m(x)
    assert [f.shape[-1] for f in feats] == [4, 2]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("backend", ["fused", "reference"])
def test_cuda_graph_matches_eager_gpu(backend):
    pytest.importorskip("mmengine")
    from vim_backbone.mm.backbone import VimBackbone
    torch.manual_seed(0)
    arch = dict(embed_dim=64, depth=4, d_state=16)
    m = VimBackbone(arch=arch, img_size=64, out_indices=(1, 3), tap_scales=(2, 0.5), cuda_graph=True,
                    scan_backend=backend).cuda().eval()
    shapes = [(2, 3, 64, 96), (1, 3, 80, 64)]

    def check(shape):
        for _ in range(4):  # eager, capture, replays: a new input each time, so a replay must recompute
            x = torch.randn(shape, device="cuda")
            got, want = m(x), m._forward(x)
            assert all(torch.equal(a, b) for a, b in zip(got, want))

    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        for shape in shapes:
            check(shape)
        assert len(m.graphed.graphs) == 2
        m.layers[0].mixer.D.add_(0.5)  # in place: the graphs go, the outputs follow
        check(shapes[0])
        assert len(m.graphed.graphs) == 1


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
@pytest.mark.parametrize("first", ["cuda:0", "cuda:1"])
def test_cuda_graph_on_a_device_that_is_not_current_gpu(first):
    # the model and its inputs on cuda:1 while cuda:0 is current: capture and replay run on cuda:1, also after a
    # first capture on cuda:0 (which fixes torch.cuda.graph's default capture stream on that GPU)
    torch.manual_seed(0)
    torch.cuda.set_device(0)
    kw = dict(embed_dim=64, depth=4, img_size=64, num_classes=7, cuda_graph=True)
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        if first == "cuda:0":
            m0 = vim.create_model("vim_tiny_patch16_224", **kw).cuda().eval()
            x0 = torch.randn(1, 3, 64, 64, device="cuda")
            for _ in range(3):
                m0(x0)
            assert len(m0.graphed.graphs) == 1
        m = vim.create_model("vim_tiny_patch16_224", **kw).to("cuda:1").eval()
        for i in range(4):  # eager, capture, replays: a new input each time, so a replay must recompute
            x = torch.randn(2, 3, 64, 64, device="cuda:1")
            got, want = m(x), m._forward(x)
            assert got.device == x.device
            assert torch.equal(got, want), i
    assert len(m.graphed.graphs) == 1
    assert torch.cuda.current_device() == 0


# ----------------------------------------------------------------------------------------- training graphs
def _graphed_train_cpu(monkeypatch, model, max_graphs=2):
    """``model.graphed_train`` with a stand-in for make_graphed_callables that runs the step eagerly (CPU), and
    the usability rule without its CUDA condition."""
    made = []

    def make(module, fn, x, warmup):
        made.append(tuple(x.shape))
        return TrainingGraph(module, fn, x, warmup, capture=False)

    g = GraphedTraining(max_graphs=max_graphs, make=make)
    monkeypatch.setattr(g, "usable", lambda m, x: m.training and torch.is_grad_enabled() and not x.requires_grad)
    model.graphed_train = g
    return g, made


def test_training_graph_cache_rules(monkeypatch):
    m = vim.VisionMamba(**TINY).train()
    g, made = _graphed_train_cpu(monkeypatch, m)
    a, b, c = torch.randn(2, 3, 32, 32), torch.randn(1, 3, 32, 32), torch.randn(1, 3, 48, 32)

    def step(x):
        m(x).sum().backward()

    step(a)
    assert made == [] and not g.graphs  # seen once: eager
    step(a)
    assert made == [(2, 3, 32, 32)]  # seen twice: captured
    step(a)
    assert made == [(2, 3, 32, 32)]  # replayed
    for x in (b, b, c, c):
        step(x)
    assert made == [(2, 3, 32, 32), (1, 3, 32, 32), (1, 3, 48, 32)] and len(g.graphs) == 2  # a went (LRU)
    with torch.no_grad():
        m(a)
    m.eval()
    m(a).sum().backward()
    assert len(made) == 3  # no graphs without gradients or in eval mode
    m.train()
    m.head.weight.requires_grad_(False)  # another set of parameters to differentiate: the graphs go
    step(b)
    assert not g.graphs
    step(b)
    assert len(made) == 4


def test_training_graph_is_busy_until_its_backward(monkeypatch):
    m = vim.VisionMamba(**TINY).train()
    g, made = _graphed_train_cpu(monkeypatch, m)
    x = torch.randn(2, 3, 32, 32)
    for _ in range(2):
        m(x).sum().backward()
    assert len(made) == 1 and not g.busy
    out = m(x)  # from the graph, whose backward has not run yet
    assert len(g.busy) == 1
    with pytest.warns(UserWarning, match="second forward"):
        out2 = m(x)  # eagerly: the graph holds out's activations
    (out.sum() + out2.sum()).backward()
    assert not g.busy
    m(x).sum().backward()
    assert len(made) == 1 and not g.busy


def test_training_graph_gradients_match_eager_cpu(monkeypatch):
    # the graphs' bookkeeping without the capture: the step on parameter aliases, its gradients handed on to the
    # real parameters through one autograd function, the same gradient tensors every step (as a replay writes them)
    torch.manual_seed(0)
    eager = vim.VisionMamba(**TINY).train()
    graphed = copy.deepcopy(eager)
    g, made = _graphed_train_cpu(monkeypatch, graphed)
    opts = [torch.optim.SGD(m.parameters(), lr=0.1) for m in (eager, graphed)]
    for i in range(4):
        xs = torch.randn(2, 2, 3, 32, 32)
        for m in (eager, graphed):
            m.zero_grad(set_to_none=True)
            for x in xs:  # two backward passes into .grad (gradient accumulation), other inputs
                (m(x) ** 2).mean().backward()
        for (name, p), q in zip(eager.named_parameters(), graphed.parameters()):
            assert (p.grad is None) == (q.grad is None), name
            if p.grad is not None:
                torch.testing.assert_close(q.grad, p.grad, rtol=1e-5, atol=1e-7, msg=f"{name}, step {i}")
        for opt in opts:
            opt.step()
    assert made == [(2, 3, 32, 32)] and len(g.graphs) == 1
    for p, q in zip(eager.parameters(), graphed.parameters()):  # the optimizer steps reached the aliases
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-7)


def test_training_graphs_pickle_without_graphs(monkeypatch):
    m = vim.VisionMamba(**TINY, cuda_graph_train=True).train()
    assert isinstance(m.graphed_train, GraphedTraining)
    m.graphed_train.graphs["k"] = object()
    m2 = copy.deepcopy(m)
    assert isinstance(m2.graphed_train, GraphedTraining) and not m2.graphed_train.graphs


def test_training_graphs_only_for_cuda_training_outside_replicas(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: False)  # no CUDA here
    m = vim.VisionMamba(**TINY).train()
    g = GraphedTraining()
    assert g.usable(m, _CudaLike()) and not g.usable(m, torch.zeros(1))
    with torch.no_grad():
        assert not g.usable(m, _CudaLike())
    assert not g.usable(m.eval(), _CudaLike())
    m.train()._is_replica = True
    assert not g.usable(m, _CudaLike())
    del m._is_replica
    m.with_cp = True
    assert not g.usable(m, _CudaLike())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("backend,with_cp", [("fused", False), ("fused", True), ("reference", False)])
def test_cuda_graph_train_matches_eager_gpu(backend, with_cp):
    pytest.importorskip("mmengine")
    from vim_backbone.mm.backbone import VimBackbone
    torch.manual_seed(0)
    kw = dict(arch=dict(embed_dim=64, depth=4, d_state=16), img_size=64, out_indices=(1, 3), tap_scales=(2, 0.5),
              scan_backend=backend, with_cp=with_cp)
    eager = VimBackbone(**kw).cuda().train()
    graphed = VimBackbone(**kw, cuda_graph_train=True).cuda().train()
    graphed.load_state_dict(eager.state_dict())
    opts = [torch.optim.SGD(m.parameters(), lr=0.1) for m in (eager, graphed)]
    for i in range(5):  # eager, capture, replays; a new input and an optimizer step each time
        x = torch.randn(2, 3, 64, 96, device="cuda")
        losses = []
        for m, opt in zip((eager, graphed), opts):
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                feats = m(x)
                loss = sum((f.float() ** 2).mean() for f in feats)
            loss.backward()
            losses.append(loss.detach())
        torch.testing.assert_close(losses[1], losses[0], rtol=1e-4, atol=1e-5, msg=f"loss, step {i}")
        for (name, p), q in zip(eager.named_parameters(), graphed.parameters()):
            if p.grad is None:
                assert q.grad is None, name
                continue
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-3, atol=1e-5, msg=f"{name}, step {i}")
        for opt in opts:
            opt.step()
    # with_cp: no graphs (checkpointing's recomputation restores RNG states, which a capture does not allow)
    assert len(graphed.graphed_train.graphs) == (0 if with_cp else 1) and not graphed.graphed_train.busy


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_train_draws_fresh_drop_paths_gpu():
    torch.manual_seed(0)
    m = vim.create_model("vim_tiny_patch16_224", embed_dim=64, depth=4, img_size=64, num_classes=7,
                         drop_path_rate=0.5, cuda_graph_train=True).cuda().train()
    x = torch.randn(2, 3, 64, 64, device="cuda")
    outs = []
    for _ in range(4):
        out = m(x)
        out.sum().backward()
        outs.append(out.detach().clone())
    assert len(m.graphed_train.graphs) == 1
    assert not torch.equal(outs[2], outs[3])  # two replays, other drop paths
