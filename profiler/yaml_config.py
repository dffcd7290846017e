"""A user's YAML (or JSON) config file as plain data, and a schema error as one line.

::

    path --read_yaml--> text --parse_yaml--> dict / list / scalar
        errors: "FILE: cannot read WHAT (...)", "FILE: invalid YAML at line L, column C: ..."
    ValidationError --first_error--> error --describe_validation_error--> one line:
        "unknown key 'a.b'; allowed: ...", "field 'a.b': ... (got ...)", "missing required field 'a'"

Device files, search spaces and arch specs all read through here, so every such mistake is one
``VidlatError`` line of the caller's type that names the file; ``StrictConfig`` is the base of
their schemas. A file is hostile input: it is read only up to ``MAX_YAML_BYTES``, its nesting is
bounded by ``MAX_YAML_DEPTH`` and its aliases may expand to at most ``MAX_YAML_NODES`` nodes (a
"billion laughs" file is refused before anything walks it), and ``short_repr`` is how a message
quotes a value of it.
"""

from __future__ import annotations

import typing
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from profiler.errors import MAX_REPR, VidlatError, clip, short_repr


MAX_YAML_BYTES = 1 << 20  # a config file is a few KiB
MAX_YAML_DEPTH = 64  # nested collections
MAX_YAML_NODES = 100_000  # nodes of the document with every alias expanded


class _BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with bounded nesting and alias expansion, that rejects a key given twice
    in one mapping (PyYAML keeps the last silently) and reports a bad value (a date such as
    2024-13-45, an integer of 5000 digits) as a YAML error at its line."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self._depth >= MAX_YAML_DEPTH:
            raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_YAML_DEPTH} levels",
                                              self.peek_event().start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_document(self, node: yaml.Node) -> Any:
        _check_expansion(node)
        return super().construct_document(node)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(None, None, f"cannot read value ({exc})", node.start_mark) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # "<<: *anchor" merges keys that the mapping may then override
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # the SafeLoader reports an unhashable key itself
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key '{key}' given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _check_expansion(root: yaml.Node) -> None:
    """A YAML error if ``root`` with its aliases expanded has more than ``MAX_YAML_NODES`` nodes or
    an alias inside its own anchor (an endless value)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise yaml.composer.ComposerError(None, None, "an alias refers to a node that contains it", node.start_mark)
        open_nodes.add(key)
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            children = []
        total = 1
        for child in children:
            total += size(child)
            if total > MAX_YAML_NODES:
                raise yaml.composer.ComposerError(
                    None, None, f"aliases expand to more than {MAX_YAML_NODES} values", node.start_mark)
        open_nodes.discard(key)
        sizes[key] = total
        return total

    size(root)


def parse_yaml(text: str, *, source: str, error: type[VidlatError]) -> Any:
    """The YAML ``text`` as plain data; ``error`` naming ``source``, the line and the problem if it is not
    YAML or gives a key twice."""
    if len(text) > MAX_YAML_BYTES:
        raise error(f"{source}: too large for a config file ({len(text)} characters; at most {MAX_YAML_BYTES})")
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = clip(getattr(exc, "problem", None) or "not valid YAML", 2 * MAX_REPR)
        raise error(f"{source}: invalid YAML{where}: {problem}") from None


def read_yaml(path: str | Path, *, error: type[VidlatError], what: str) -> Any:
    """The parsed contents of the YAML/JSON file ``path`` (``what`` names it in errors, e.g. "device file")."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            data = file.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    if len(data) > MAX_YAML_BYTES:
        raise error(f"{path}: cannot read {what} (larger than {MAX_YAML_BYTES} bytes; a config file is a few KiB)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{path}: cannot read {what} (not UTF-8 text; expected YAML)") from None
    return parse_yaml(text, source=str(path), error=error)


class StrictConfig(BaseModel):
    """Base of every config schema: an unknown key is an error, a loaded config does not change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def first_error(exc: ValidationError) -> dict[str, Any]:
    """The error to report: an unknown key first (a typo also shows as a missing field), else the first."""
    errors = exc.errors()
    return next((error for error in errors if error["type"] == "extra_forbidden"), errors[0])


def describe_validation_error(error: dict[str, Any], model: type[BaseModel]) -> str:
    """One pydantic error (an item of ``ValidationError.errors()``) of ``model`` as one line."""
    loc = clip(".".join(str(part) for part in error["loc"] if not str(part).startswith("function-after")))
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, error["loc"][:-1])
        return f"unknown key '{loc}'" + (f"; allowed: {', '.join(allowed)}" if allowed else "")
    if kind == "literal_error":
        return f"field '{loc}': {error['msg'].lower()} (got {short_repr(error['input'])})"
    if kind == "missing":
        return f"missing required field '{loc}'"
    if kind == "union_tag_invalid":
        return f"field '{loc}': {error['msg']}"
    message = error["msg"].removeprefix("Value error, ")
    if not loc:
        return message
    got = error.get("input")
    shown = f" (got {short_repr(got)})" if not isinstance(got, dict | list) else ""
    return f"field '{loc}': {message[:1].lower()}{message[1:]}{shown}"


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model at ``loc`` inside ``model``.

    List indexes pass through to the item model; in a tagged union (``hardware: A | B`` with a
    ``template`` literal) pydantic puts the tag in ``loc``, which picks the member.
    """
    candidates: list[type[BaseModel]] = [model]
    for part in loc:
        if isinstance(part, int):
            continue
        tagged = [member for member in candidates if _has_tag(member, part)]
        if len(candidates) > 1 and len(tagged) == 1:
            candidates = tagged
            continue
        if len(candidates) != 1:
            return []
        field = candidates[0].model_fields.get(part)
        if field is None:
            return []
        candidates = _models_in(field.annotation)
    if len(candidates) != 1:
        return []
    return sorted(name for name, field in candidates[0].model_fields.items() if not field.exclude)  # excluded: set by code


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The model classes an annotation holds: ``M``, ``list[M]``, ``M | None``, ``Annotated[A | B, ...]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [found for argument in typing.get_args(annotation) for found in _models_in(argument)]


def _has_tag(model: type[BaseModel], tag: Any) -> bool:
    """Whether one of ``model``'s fields is ``Literal[tag]`` (the discriminator of a tagged union)."""
    return any(typing.get_origin(field.annotation) is typing.Literal and typing.get_args(field.annotation) == (tag,)
               for field in model.model_fields.values())
