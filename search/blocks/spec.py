"""Block strings: ``family[_k<t><h><w>][_h<N>][_e<N>][_se][_hs]`` <-> ``BlockSpec``.

::

    "x3d_k133_e4_se_hs" --parse_block--> BlockSpec(family="x3d", kernel=(1, 3, 3), expansion=4,
                                                   se=True, act="hardswish")
    BlockSpec --str()--> "x3d_k133_e4_se_hs"   (canonical token order: k, h, e, se, hs)

Which tokens a family takes is declared by its registered ``BlockFamily``; this module only knows
the grammar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from profiler.errors import short_repr
from search.errors import BlockSpecError

_KERNEL = re.compile(r"^k([1-9])([1-9])([1-9])$")
_NUMBER = re.compile(r"^(e|h)([1-9][0-9]*)$")


@dataclass(frozen=True)
class BlockSpec:
    """One searchable block: its family and options (``None``/``False`` where not used)."""

    family: str
    kernel: tuple[int, int, int] | None = None
    expansion: int | None = None
    heads: int | None = None
    se: bool = False
    act: str = "silu"

    def __str__(self) -> str:
        parts = [self.family]
        if self.kernel is not None:
            parts.append("k" + "".join(str(size) for size in self.kernel))
        if self.heads is not None:
            parts.append(f"h{self.heads}")
        if self.expansion is not None:
            parts.append(f"e{self.expansion}")
        if self.se:
            parts.append("se")
        if self.act == "hardswish":
            parts.append("hs")
        return "_".join(parts)

    def tokens(self) -> set[str]:
        """The option tokens this spec uses: a subset of {"k", "e", "h", "se", "hs"}."""
        used = {"k": self.kernel is not None, "e": self.expansion is not None, "h": self.heads is not None,
                "se": self.se, "hs": self.act == "hardswish"}
        return {token for token, present in used.items() if present}


def tokenize(text: str) -> BlockSpec:
    """Parse the grammar only (no family checks); ``BlockSpecError`` naming the bad token."""
    family, *tokens = text.strip().split("_")
    fields: dict[str, object] = {}
    for token in tokens:
        kernel = _KERNEL.match(token)
        number = _NUMBER.match(token)
        if kernel:
            name, value = "kernel", tuple(int(size) for size in kernel.groups())
            if any(size % 2 == 0 for size in value):
                raise BlockSpecError(f"block {short_repr(text)}: kernel sizes must be odd (1, 3, 5, 7, 9), got {short_repr(token)}")
        elif number:
            name, value = ("expansion" if number.group(1) == "e" else "heads"), int(number.group(2))
        elif token == "se":
            name, value = "se", True
        elif token == "hs":
            name, value = "act", "hardswish"
        else:
            raise BlockSpecError(f"block {short_repr(text)}: unknown token {short_repr(token)} (allowed: k<t><h><w>, e<N>, h<N>, se, hs)")
        if name in fields:
            raise BlockSpecError(f"block {short_repr(text)}: token {short_repr(token)} given twice")
        fields[name] = value
    return BlockSpec(family=family, **fields)  # type: ignore[arg-type]
