"""Block library: registered families, block strings and ``create_block``.

::

    "x3d_k333_e3_se" --parse_block--> BlockSpec --create_block(in, out, stride)--> nn.Module
                                                     (N, C_in, T, H, W) -> (N, C_out, T', H', W')

Families (one module each, registered on import): x3d, r2p1d, csn, tsm (2D-only), me (2D-only),
attn, skip. A new family is one new module plus one import line here.
"""

from search.blocks.registry import (
    BLOCKS,
    BlockFamily,
    check_shapes,
    create_block,
    families_help,
    output_shape,
    parse_block,
    register_block,
)
from search.blocks.spec import BlockSpec
# registered in this order (the order help and listings show): x3d, r2p1d, csn, tsm, me, attn, skip
from search.blocks import x3d, r2p1d, csn, tsm, me, attn, skip  # noqa: F401,I001

__all__ = ["BLOCKS", "BlockFamily", "BlockSpec", "check_shapes", "create_block", "families_help", "output_shape",
           "parse_block", "register_block"]
