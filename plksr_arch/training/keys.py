"""Option keys, declared by the classes that read them: typed, with a default and a one-line doc, once.

A class that reads keys from an option file lists `OptionKeys` dataclasses in its `option_keys` (our models and
datasets; `training.basicsr_keys` declares what BasicSR's own classes read). Each dataclass says where its keys live
(`section`: the top level, `train`, `val` or the dataset's mapping), takes the YAML types from its annotations, and
holds the rules that involve its keys (`check`). `training.options` validates an option file once against the
declarations of the classes it names; `tools/generate_docs.py` writes docs/options.md from the same declarations.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from plksr_arch.errors import UserError

NoneType = type(None)


class OptionsError(UserError):
    """A user error in an option file; the message names the file and the key path."""


def fail(source: str, key: str, problem: str) -> OptionsError:
    """The one-line error `<file>: <key.path>: <problem>`."""
    return OptionsError(f"{source}: {key}: {problem}" if key else f"{source}: {problem}")


def option(default: Any, doc: str) -> Any:
    """A key with its default and a one-line doc (its YAML types are the field's annotation)."""
    return dataclasses.field(default=default, metadata={"doc": doc})


def needed(doc: str) -> Any:
    """A key without a default that the class's rules require (BasicSR reads it with `opt[key]`)."""
    return dataclasses.field(default=None, metadata={"doc": doc, "needed": True})


def yaml_types(annotation: Any) -> tuple[type, ...]:
    """The Python types a YAML value may have for an annotation: `int | None` -> (int, NoneType); a float also
    accepts an int (YAML's `1` for `1.0`)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return tuple(t for part in typing.get_args(annotation) for t in yaml_types(part))
    origin = typing.get_origin(annotation) or annotation
    if origin is None:
        return (NoneType,)
    return (int, float) if origin is float else (origin,)


@dataclass(frozen=True)
class Declared:
    """One declared key, as docs/options.md lists it."""

    section: str
    name: str
    types: tuple[type, ...]
    default: Any
    doc: str
    needed: bool


Keys = TypeVar("Keys", bound="OptionKeys")


@dataclass(frozen=True)
class OptionKeys:
    """Base of a group of option keys; subclasses are frozen dataclasses whose fields are made by `option`/`needed`."""

    section: ClassVar[str] = ""  # "" (top level), "train", "val" or "dataset" (each dataset's own mapping)

    @classmethod
    def read(cls: type[Keys], mapping: Mapping[str, Any] | None) -> Keys:
        """The keys of `mapping` (the section's mapping in an option file), defaults where absent."""
        mapping = mapping or {}
        return cls(**{f.name: mapping[f.name] for f in dataclasses.fields(cls) if f.name in mapping})

    @classmethod
    def of(cls: type[Keys], opt: Mapping[str, Any]) -> Keys:
        """This group's keys in a whole option file (the top level or its `section`), defaults where absent; a
        `dataset` group is read from each dataset's mapping with `read`."""
        return cls.read(opt.get(cls.section) if cls.section else opt)

    @classmethod
    def declared(cls) -> list[Declared]:
        hints = typing.get_type_hints(cls)
        return [
            Declared(
                cls.section,
                f.name,
                yaml_types(hints[f.name]),
                f.default,
                f.metadata["doc"],
                bool(f.metadata.get("needed")),
            )
            for f in dataclasses.fields(cls)
        ]

    @classmethod
    def schema(cls) -> dict[str, tuple[type, ...]]:
        """{key: YAML types} of this group."""
        return {d.name: d.types for d in cls.declared()}

    @classmethod
    def check(cls, opt: dict, source: str, *, is_train: bool, check_paths: bool) -> None:
        """The rules that involve these keys (types are already checked); raise `fail(source, key, problem)`."""


def optimizer_class(name: Any) -> type:
    """The torch.optim optimizer `train.optim_*.type` names; raises ValueError naming the value."""
    import torch.optim

    cls = getattr(torch.optim, name, None) if isinstance(name, str) else None
    if not isinstance(cls, type) or not issubclass(cls, torch.optim.Optimizer):
        raise ValueError(f"{name!r} is not an optimizer in torch.optim")
    return cls


def type_name(kinds: tuple[type, ...]) -> str:
    """`int or null`, as errors and docs/options.md write types."""
    names = dict.fromkeys("null" if k is NoneType else k.__name__ for k in kinds)
    return " or ".join(names)
