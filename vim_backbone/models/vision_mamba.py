"""Vision Mamba (Vim): the released model, any input size, features for dense tasks."""
import math
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint as grad_checkpoint

from ..checkpoint import unwrap_state_dict
from ..layers import DropPath, PatchEmbed, RMSNorm, upcast, VimBlock, insert_middle, resize_pos_embed, split_pos_embed, to_2tuple
from .cuda_graph import GraphedForward, GraphedTraining

OUTPUT_FMTS = ("NCHW", "NLC")
NO_WEIGHT_DECAY_SUFFIXES = ("A_log", "A_b_log", "D", "D_b")


def _lecun_normal_(weight: torch.Tensor) -> None:
    fan_in = weight.shape[1] * weight[0][0].numel()
    # 0.8796... is the std of a unit normal truncated to [-2, 2]
    nn.init.trunc_normal_(weight, std=math.sqrt(1.0 / fan_in) / 0.87962566103423978)


def take_indices(num_blocks: int, indices: Optional[Union[int, Sequence[int]]]) -> List[int]:
    """Normalise ``indices``: None = all blocks, int n = last n blocks, negatives count from the end."""
    if indices is None:
        return list(range(num_blocks))
    if isinstance(indices, int):
        if not 0 < indices <= num_blocks:
            raise ValueError(f"indices={indices} must be in 1..{num_blocks} (the last n blocks)")
        return list(range(num_blocks - indices, num_blocks))
    out = []
    for i in indices:
        j = i + num_blocks if i < 0 else i
        if not 0 <= j < num_blocks:
            raise ValueError(f"block index {i} out of range for depth {num_blocks} (valid: {-num_blocks}..{num_blocks - 1})")
        out.append(j)
    return sorted(set(out))


class VisionMamba(nn.Module):
    """Vision Mamba with a middle class token, as released.

    Args:
        img_size (int | tuple): size the position embedding is stored for. Other sizes work; the embedding
            is resized for the actual patch grid. Defaults to 224.
        patch_size (int): Defaults to 16.
        stride (int): patch stride (16, or 8 for the "+" variants). Defaults to 16.
        in_chans (int): Defaults to 3.
        num_classes (int): 0 for no head. Defaults to 1000.
        embed_dim (int): D. Defaults to 192.
        depth (int): Defaults to 24.
        d_state, expand, d_conv, dt_rank: mixer sizes (N=16, E=2D, 4, ceil(D/16)).
        drop_rate (float): dropout after the position embedding. Defaults to 0.
        drop_path_rate (float): stochastic depth; block i >= 1 gets linspace(0, rate, depth)[i - 1].
        norm_eps (float): RMSNorm eps. Defaults to 1e-5.
        class_token (bool): keep the middle class token (classification weights) or not (the seg recipe).
        with_cp (bool): gradient checkpointing per block while training. Defaults to False.
        scan_backend (str, optional): "reference", "mamba_ssm" or None (automatic / VIM_SCAN_BACKEND).
        scan_recompute (bool): in training with the ``fused`` backend, each block keeps fewer activations for the
            backward (not its normalised input, in_proj's output, the conv output, the step dt, nor the fp32 copy of
            B and C), which recomputes them: the norm, two GEMMs, a conv kernel and a cast a block, not the scan.
            Vim-Ti at 1024^2 keeps 332 instead of 848 MB an image, DeiT-Ti + SDPA 351 (``tools/activation_memory.py``);
            ``with_cp`` keeps less and recomputes whole blocks. The step takes 3-4% longer (an H200, docs/RESULTS.md,
            session 16). No effect with the other backends. Defaults to True.
        cuda_graph (bool): run inference (eval mode, gradients off, CUDA inputs) from CUDA graphs, one per input
            shape seen twice, at most ``cuda_graph_max_shapes`` kept (:class:`~.cuda_graph.GraphedForward`):
            small batches are otherwise bound by the host's kernel launches. Defaults to False.
        cuda_graph_max_shapes (int): graphs kept at once; each holds one forward's activations. Defaults to 4.
        cuda_graph_train (bool): run training steps' forward and backward (training mode, gradients on, CUDA
            inputs) from CUDA graphs, one pair per input shape seen twice, at most two kept
            (:class:`~.cuda_graph.GraphedTraining`): a step otherwise spends about 0.1 s of host time enqueueing
            Vim-Ti's kernels, more than the GPU needs at the dense recipes' batches. Not with ``with_cp``.
            Defaults to False.
    """

    def __init__(self, img_size=224, patch_size: int = 16, stride: int = 16, in_chans: int = 3,
                 num_classes: int = 1000, embed_dim: int = 192, depth: int = 24, d_state: int = 16,
                 expand: int = 2, d_conv: int = 4, dt_rank="auto", drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0, norm_eps: float = 1e-5, class_token: bool = True,
                 with_cp: bool = False, scan_backend: Optional[str] = None, cuda_graph: bool = False,
                 cuda_graph_max_shapes: int = 4, scan_recompute: bool = True, cuda_graph_train: bool = False):
        super().__init__()
        self.num_classes = num_classes
        self.embed_dim = self.num_features = embed_dim
        self.depth = depth
        self.num_prefix_tokens = 1 if class_token else 0
        self.with_cp = with_cp
        self._pos_cache: Dict[Any, torch.Tensor] = {}
        self.graphed = GraphedForward(cuda_graph_max_shapes) if cuda_graph else None
        self.graphed_train = GraphedTraining() if cuda_graph_train else None

        self.patch_embed = PatchEmbed(img_size, patch_size, stride, in_chans, embed_dim)
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if class_token else None
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + self.num_prefix_tokens, embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)

        dpr = [0.0] + torch.linspace(0, drop_path_rate, depth).tolist()[: depth - 1]
        mixer_kwargs = dict(d_state=d_state, d_conv=d_conv, expand=expand, dt_rank=dt_rank, backend=scan_backend,
                            recompute=scan_recompute)
        self.layers = nn.ModuleList(VimBlock(embed_dim, drop_path=dpr[i], norm_eps=norm_eps, **mixer_kwargs)
                                    for i in range(depth))
        self.norm_f = RMSNorm(embed_dim, eps=norm_eps)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()

        reduction = self.patch_embed.stride[0]
        self.feature_info = [dict(num_chs=embed_dim, reduction=reduction, module=f"layers.{i}") for i in range(depth)]
        self.reset_parameters()
        self._register_load_state_dict_pre_hook(self._convert_on_load)

    # ----------------------------------------------------------------------------------------------------- init
    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Initialisation of the released training code."""
        _lecun_normal_(self.patch_embed.proj.weight)
        nn.init.zeros_(self.patch_embed.proj.bias)
        if isinstance(self.head, nn.Linear):
            nn.init.trunc_normal_(self.head.weight, std=0.02)
            nn.init.zeros_(self.head.bias)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        for layer in self.layers:
            mixer = layer.mixer
            for m in mixer.modules():
                if isinstance(m, nn.Linear) and m.bias is not None and not getattr(m.bias, "_no_reinit", False):
                    nn.init.zeros_(m.bias)
            nn.init.kaiming_uniform_(mixer.out_proj.weight, a=math.sqrt(5))
            mixer.out_proj.weight /= math.sqrt(self.depth)

    def no_weight_decay(self) -> Set[str]:
        """Parameter names that take no weight decay."""
        names = {"pos_embed", "cls_token"}
        for name, _ in self.named_parameters():
            if name.rsplit(".", 1)[-1] in NO_WEIGHT_DECAY_SUFFIXES:
                names.add(name)
        return names & {n for n, _ in self.named_parameters()}

    def get_layer_depth(self, param_name: str, prefix: str = "") -> Tuple[int, int]:
        """Layer id of a parameter for layer-wise lr decay (mmpretrain convention).

        Embeddings are layer 0, ``layers.i`` is layer i + 1, everything after (norm_f, head, necks) is the
        last layer. Returns ``(layer_depth, num_layers)`` with ``num_layers = depth + 2``.
        """
        num_layers = self.depth + 2
        if not param_name.startswith(prefix):
            return num_layers - 1, num_layers
        name = param_name[len(prefix):]
        if name in ("cls_token", "pos_embed") or name.startswith("patch_embed"):
            return 0, num_layers
        if name.startswith("layers."):
            return int(name.split(".")[1]) + 1, num_layers
        return num_layers - 1, num_layers

    # ------------------------------------------------------------------------------------------------- forward
    def _pos_embed_for(self, grid: Tuple[int, int]) -> torch.Tensor:
        if tuple(grid) == tuple(self.patch_embed.grid_size):
            return self.pos_embed
        resize = lambda: resize_pos_embed(self.pos_embed, grid, self.patch_embed.grid_size, self.num_prefix_tokens)
        if torch.is_grad_enabled() and self.pos_embed.requires_grad:
            return resize()  # training: must stay in the graph
        key = (tuple(grid), self.pos_embed._version, self.pos_embed.data_ptr(), self.pos_embed.dtype)
        cached = self._pos_cache.get(key)
        if cached is None:
            if len(self._pos_cache) > 16:
                self._pos_cache.clear()
            cached = self._pos_cache[key] = resize().detach()
        return cached

    def embed(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """Images (B, C, H, W) -> tokens (B, M + cls, D) with position embedding, and the grid."""
        tokens, grid = self.patch_embed(x)
        if self.cls_token is not None:
            tokens = insert_middle(tokens, self.cls_token.expand(tokens.shape[0], -1, -1))
        return self.pos_drop(tokens + self._pos_embed_for(grid)), grid

    def _block(self, layer: nn.Module, hidden: torch.Tensor, residual: Optional[torch.Tensor]):
        if self.with_cp and self.training and torch.is_grad_enabled():
            return grad_checkpoint(layer, hidden, residual, use_reentrant=False)
        return layer(hidden, residual)

    def _final_norm(self, hidden: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        if isinstance(self.norm_f, RMSNorm):
            return self.norm_f.add_norm(self.drop_path(hidden), residual)[0]
        return self.norm_f(residual + upcast(self.drop_path(hidden))).to(hidden.dtype)  # pruned: Identity

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> normalised tokens (B, M + cls, D); the cls token sits at M // 2."""
        hidden, _ = self.embed(x)
        residual = None
        for layer in self.layers:
            hidden, residual = self._block(layer, hidden, residual)
        return self._final_norm(hidden, residual)

    def cls_index(self, num_tokens: int) -> int:
        """Position of the class token in a sequence of ``num_tokens`` (M + 1) tokens."""
        return (num_tokens - 1) // 2

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x[:, self.cls_index(x.shape[1])] if self.cls_token is not None else x.mean(1)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.graphed_train is not None and self.training:
            return self.graphed_train(self, self._forward, x)
        if self.graphed is not None:
            return self.graphed(self, self._forward, x)
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def _split_cls(self, tokens: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        if self.cls_token is None:
            return tokens, None
        mid = self.cls_index(tokens.shape[1])
        return torch.cat([tokens[:, :mid], tokens[:, mid + 1:]], dim=1), tokens[:, mid]

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: Optional[Union[int, Sequence[int]]] = None,
        norm: bool = False,
        output_fmt: str = "NCHW",
        return_cls: bool = False,
        intermediates_only: bool = False,
        stop_early: bool = False,
    ):
        """Per-block features for dense prediction, for any H x W.

        The feature of block i is the residual stream after it (``residual + hidden``), i.e. what block
        i + 1 normalises; ``norm=True`` applies ``norm_f`` (for the last block this equals
        ``forward_features``).

        Args:
            x (Tensor): (B, C, H, W).
            indices (int | sequence, optional): blocks to return; int n = last n; negatives allowed.
            norm (bool): apply ``norm_f`` to each feature. Defaults to False.
            output_fmt (str): "NCHW" maps (B, D, gh, gw) or "NLC" tokens (B, gh * gw, D).
            return_cls (bool): return ``(feature, cls (B, D))`` pairs. The cls token is always removed
                from its real position (M // 2) before the grid is formed.
            intermediates_only (bool): return only the list of features.
            stop_early (bool): skip blocks after the last requested one (only with intermediates_only).

        Returns:
            list of features, or ``(forward_features output, list)``.
        """
        if output_fmt not in OUTPUT_FMTS:
            raise ValueError(f"output_fmt {output_fmt!r} not in {OUTPUT_FMTS}")
        if return_cls and self.cls_token is None:
            raise ValueError("return_cls=True but this model has no class token (class_token=False)")
        take = take_indices(self.depth, indices)
        last = take[-1] if (stop_early and intermediates_only) else self.depth - 1
        hidden, (gh, gw) = self.embed(x)
        residual = None
        feats = []
        for i, layer in enumerate(self.layers[: last + 1]):
            hidden, residual = self._block(layer, hidden, residual)
            if i in take:
                feat = residual + upcast(hidden)
                feat = self.norm_f(feat) if norm else feat
                feat = feat.to(hidden.dtype)
                tokens, cls = self._split_cls(feat)
                if output_fmt == "NCHW":
                    tokens = tokens.reshape(tokens.shape[0], gh, gw, tokens.shape[-1]).permute(0, 3, 1, 2).contiguous()
                feats.append((tokens, cls) if return_cls else tokens)
        if intermediates_only:
            return feats
        return self._final_norm(hidden, residual), feats

    def prune_intermediate_layers(self, indices: Optional[Union[int, Sequence[int]]] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> List[int]:
        """Drop the blocks after the last of ``indices`` (and optionally ``norm_f`` / the head).

        timm's ``features_only=True`` wrapper (``FeatureGetterNet``) calls this before
        ``forward_intermediates``. Returns the absolute block indices to request afterwards.
        """
        take = take_indices(self.depth, indices)
        self.layers = self.layers[: take[-1] + 1]
        self.depth = len(self.layers)
        self.feature_info = self.feature_info[: self.depth]
        if prune_norm:
            self.norm_f = nn.Identity()
        if prune_head:
            self.head = nn.Identity()
            self.num_classes = 0
        return take

    def load_pretrained(self, checkpoint_path: str, strict: bool = True) -> Dict[str, Any]:
        """Load a weight file as :func:`load_pretrained` does (timm calls this for ``custom_load`` cfgs)."""
        return load_pretrained(self, checkpoint_path, strict=strict)

    # -------------------------------------------------------------------------------------------- checkpoints
    def _convert_on_load(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        """Let ``load_state_dict`` take an official file's dict unchanged (unwrap, resize pos_embed, ...)."""
        local = {k[len(prefix):]: state_dict.pop(k) for k in list(state_dict) if k.startswith(prefix)}
        converted = checkpoint_filter_fn(local, self)
        state_dict.update({prefix + k: v for k, v in converted.items()})


def mm_to_release_keys(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Keys written by OpenMMLab models (``backbone.*``, ``head.fc.*``) to the release layout."""
    if not any(k.startswith("backbone.") for k in sd):
        return sd
    out = {}
    for k, v in sd.items():
        if k.startswith("backbone."):
            out[k[len("backbone."):]] = v
        elif k.startswith("head.fc."):
            out["head." + k[len("head.fc."):]] = v
    return out


def checkpoint_filter_fn(state_dict: Dict[str, Any], model: VisionMamba) -> Dict[str, torch.Tensor]:
    """Turn an official (or mm / timm) Vim state dict into one ``model`` loads strictly.

    Unwraps ``model``/``state_dict``, strips ``module.``/``backbone.`` prefixes, resizes ``pos_embed`` to the
    model's grid (cls slot at M // 2 kept aside and put back in the middle, or dropped for a model without
    a class token), drops ``cls_token`` for such a model and the head when the model has none or another
    number of classes. Raises ValueError naming every shape mismatch.
    """
    sd = mm_to_release_keys(unwrap_state_dict(state_dict))
    if "pos_embed" in sd and "patch_embed.proj.weight" in sd:
        pe = sd["pos_embed"]
        src_dim = sd["patch_embed.proj.weight"].shape[0]
        if pe.shape[-1] == model.embed_dim == src_dim:
            src_cls = 1 if "cls_token" in sd else 0
            grid = model.patch_embed.grid_size
            if pe.shape[1] != grid[0] * grid[1] + model.num_prefix_tokens:
                src_m = pe.shape[1] - src_cls
                src_grid = _infer_grid(src_m, grid)
                sd["pos_embed"] = resize_pos_embed(pe, grid, src_grid, num_cls=src_cls,
                                                   keep_cls=bool(model.num_prefix_tokens))
            elif src_cls and not model.num_prefix_tokens:
                sd["pos_embed"] = split_pos_embed(pe, 1)[0]
    if model.cls_token is None:
        sd.pop("cls_token", None)
    if not isinstance(model.head, nn.Linear) or (
        "head.weight" in sd and sd["head.weight"].shape != model.head.weight.shape
        and sd["head.weight"].shape[1] == model.head.weight.shape[1]
    ):
        sd.pop("head.weight", None)
        sd.pop("head.bias", None)

    expected = model.state_dict(keep_vars=True)
    mismatched = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
                  for k, v in sd.items() if k in expected and tuple(v.shape) != tuple(expected[k].shape)]
    if mismatched:
        hint = ""
        if "patch_embed.proj.weight" in sd:
            dim = sd["patch_embed.proj.weight"].shape[0]
            depth = len({k.split(".")[1] for k in sd if k.startswith("layers.")})
            hint = (f" The checkpoint is a Vim with embed_dim={dim}, depth={depth}; the model has "
                    f"embed_dim={model.embed_dim}, depth={model.depth}: create the matching variant.")
        raise ValueError("checkpoint does not fit the model; shape mismatch for " + "; ".join(mismatched) + "." + hint)
    return sd


def _infer_grid(num_tokens: int, target: Tuple[int, int]) -> Tuple[int, int]:
    """Source grid of a pos_embed with ``num_tokens`` grid tokens: square, else with the target's aspect."""
    side = int(round(num_tokens ** 0.5))
    if side * side == num_tokens:
        return side, side
    for gh in range(1, num_tokens + 1):
        if num_tokens % gh == 0 and gh * target[1] == (num_tokens // gh) * target[0]:
            return gh, num_tokens // gh
    raise ValueError(f"cannot infer the patch grid of a pos_embed with {num_tokens} tokens; "
                     "resize it with vim_backbone.layers.resize_pos_embed(pos_embed, new_grid, old_grid)")


def load_pretrained(model: VisionMamba, checkpoint: Union[str, Dict[str, Any]], strict: bool = True) -> Dict[str, List[str]]:
    """Load a weight file (or dict) into ``model``: missing/unexpected keys are an error naming them.

    The conversion (:func:`checkpoint_filter_fn`) runs in the model's load_state_dict pre-hook. A head the
    checkpoint does not provide or that was dropped on purpose (another class count) is not counted as
    missing. Returns ``{"missing": [...], "unexpected": [...], "head_dropped": bool}``.
    """
    from ..checkpoint import load_weights_file
    raw = load_weights_file(checkpoint) if isinstance(checkpoint, str) else checkpoint
    missing, unexpected = model.load_state_dict(raw, strict=False)
    head_dropped = isinstance(model.head, nn.Linear) and any(k.startswith("head.") for k in missing)
    real_missing = [k for k in missing if not k.startswith("head.")]
    if strict and (real_missing or unexpected):
        raise ValueError(f"checkpoint keys do not match the model: missing {real_missing}, unexpected {unexpected}")
    return {"missing": real_missing, "unexpected": list(unexpected), "head_dropped": head_dropped}
