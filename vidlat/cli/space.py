"""``vidlat space`` and ``vidlat arch``: search spaces and arch specs."""

from __future__ import annotations


import click
import yaml



def _shape(shape: tuple[int | str, ...]) -> str:
    return "x".join(str(size) for size in shape)


def _stride(stride: tuple[int, int, int]) -> str:
    return "".join(str(size) for size in stride)


@click.group()
def space() -> None:
    """Show search spaces and sample archs from them."""


@space.command("list")
def list_spaces() -> None:
    """The shipped search spaces."""
    from search.space import load_space, shipped_spaces

    for name in shipped_spaces():
        loaded = load_space(name)
        click.echo(f"{name:<10} {len(loaded.layers):>2} layers  {loaded.size():.3g} archs  {loaded.description}")


@space.command("blocks")
def list_blocks() -> None:
    """The block families, their string forms and what they are."""
    from search.blocks import BLOCKS

    for family in BLOCKS.values():
        click.echo(f"{family.usage():<34} {family.summary}")


@space.command("show")
@click.argument("name")
def show_space(name: str) -> None:
    """Layers, candidates and size of a space (a shipped name or a YAML file)."""
    from search.space import load_space
    from search.workloads import block_key

    loaded = load_space(name)
    click.echo(f"space {loaded.name}: {loaded.description}")
    click.echo(f"input {_shape(loaded.input_shape)} (C x T x H x W, batch 1), {loaded.num_classes} classes, "
               f"stem {loaded.stem}, head {loaded.head}")
    click.echo(f"{'layer':>5} {'stage':>5}  {'input':<14} {'out':>4} {'s':>3}  candidates")
    for slot in loaded.layers:
        click.echo(f"{slot.index:>5} {slot.stage:>5}  {_shape(slot.input_shape):<14} {slot.out_channels:>4} "
                   f"{_stride(slot.stride):>3}  ({len(slot.candidates)}) {' '.join(slot.candidates)}")
    unique = {block_key(block, slot.input_shape, slot.out_channels, slot.stride)
              for slot in loaded.layers for block in slot.candidates}
    click.echo(f"search-space size: {loaded.size():.4g} archs; {sum(len(s.candidates) for s in loaded.layers)} "
               f"(layer, candidate) pairs; {len(unique)} unique block workloads + stem + head")
    click.echo(f"reference archs: {', '.join(f'{loaded.name}:{n}' for n in loaded.reference_archs()) or 'none'}")


@space.command("sample")
@click.argument("name")
@click.option("--seed", type=int, default=0, show_default=True, help="same seed, same arch")
@click.option("--out", type=click.Path(dir_okay=False), help="write the arch here (YAML, or JSON for .json); missing folders are created, an existing file is replaced")
def sample_space(name: str, seed: int, out: str | None) -> None:
    """A random arch of the space; printed as YAML without --out."""
    from search.space import load_space

    arch = load_space(name).sample(seed)
    if out:
        arch.save(out)
        click.echo(f"wrote {out}: {' '.join(arch.layers)}")
    else:
        click.echo(yaml.safe_dump(arch.to_dict(), sort_keys=False, default_flow_style=None, width=110).rstrip())


@click.group()
def arch() -> None:
    """Inspect arch spec files."""


@arch.command("show")
@click.argument("file")
def show_arch(file: str) -> None:
    """Per-layer shapes, FLOPs and parameters, and totals (FILE or SPACE:REFERENCE, e.g. default:x3d-xs)."""
    from search.flops import layer_costs
    from search.space import resolve_arch

    spec = resolve_arch(file)
    click.echo(f"arch {spec.name or file} (space {spec.space}), input {_shape(spec.input_shape)}, "
               f"{spec.num_classes} classes")
    click.echo(f"{'layer':>5}  {'block':<18} {'input':<14} {'output':<14} {'s':>3} {'MFLOPs':>9} {'params':>9}")
    rows = layer_costs(spec)
    for row in rows:
        click.echo(f"{row.name:>5}  {row.block:<18} {_shape(row.input_shape):<14} {_shape(row.output_shape):<14} "
                   f"{_stride(row.stride):>3} {row.cost.flops / 1e6:>9.2f} {row.cost.params:>9,}")
    flops = sum(row.cost.flops for row in rows)
    params = sum(row.cost.params for row in rows)
    click.echo(f"total: {flops / 1e6:.2f} MFLOPs ({flops / 2e6:.2f} MMACs), {params:,} parameters")


__all__ = ["arch", "space"]
