"""OpenMMLab front-ends. Import the one for your framework (configs do it with ``custom_imports``):

- ``vim_backbone.mm.det``: ``VimBackbone``/``VimSimpleFPN`` in ``mmdet.registry.MODELS``
- ``vim_backbone.mm.seg``: ``VimBackbone`` in ``mmseg.registry.MODELS``
- ``vim_backbone.mm.cls``: ``VimBackbone`` in ``mmpretrain.registry.MODELS``

Each also registers the layer-decay optimizer constructor (``vim_backbone.mm.layer_decay``).
"""
