"""A user's YAML (or JSON) config file as plain data, and a schema error as one line.

::

    path --read_yaml--> text --parse_yaml--> dict / list / scalar
        errors: "FILE: cannot read WHAT (...)", "FILE: invalid YAML at line L, column C: ..."
    ValidationError --first_error--> error --describe_validation_error--> one line:
        "unknown key 'a.b'; allowed: ...", "field 'a.b': ... (got ...)", "missing required field 'a'"

Device files, search spaces and arch specs all read through here, so every such mistake is one
``VidlatError`` line of the caller's type that names the file; ``StrictConfig`` is the base of
their schemas.
"""

from __future__ import annotations

import typing
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from profiler.errors import VidlatError


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that rejects a key given twice in one mapping (PyYAML keeps the last silently)."""

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


def parse_yaml(text: str, *, source: str, error: type[VidlatError]) -> Any:
    """The YAML ``text`` as plain data; ``error`` naming ``source``, the line and the problem if it is not
    YAML or gives a key twice."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise error(f"{source}: invalid YAML{where}: {problem}") from None


def read_yaml(path: str | Path, *, error: type[VidlatError], what: str) -> Any:
    """The parsed contents of the YAML/JSON file ``path`` (``what`` names it in errors, e.g. "device file")."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
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
    loc = ".".join(str(part) for part in error["loc"] if not str(part).startswith("function-after"))
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, error["loc"][:-1])
        return f"unknown key '{loc}'" + (f"; allowed: {', '.join(allowed)}" if allowed else "")
    if kind == "literal_error":
        return f"field '{loc}': {error['msg'].lower()} (got {error['input']!r})"
    if kind == "missing":
        return f"missing required field '{loc}'"
    if kind == "union_tag_invalid":
        return f"field '{loc}': {error['msg']}"
    message = error["msg"].removeprefix("Value error, ")
    if not loc:
        return message
    got = error.get("input")
    shown = f" (got {got!r})" if not isinstance(got, dict | list) else ""
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
