from .block import VimBlock
from .drop_path import DropPath, drop_path
from .mixer import BiMambaMixer
from .norm import RMSNorm, upcast
from .patch_embed import PatchEmbed, to_2tuple
from .pos_embed import insert_middle, resize_pos_embed, split_pos_embed
