"""Keras-style configurable objects (initializers, regularizers, constraints).

A configurable object is rebuilt from `get_config()` by `from_config`. It serialises to the
dict Keras writes, `{"module", "class_name", "config", "registered_name"}`, and is looked up by
class name in its family's registry only: resolving a name never imports or runs anything.
"""

from __future__ import annotations


class Configurable:
    """Base of objects that a layer config names: a family (`module`) and a registry of classes."""

    module = ""  # Keras's module name, e.g. "keras.initializers"
    registry: dict[str, type] = {}
    aliases: dict[str, str] = {}  # snake_case names accepted by `get`, e.g. "glorot_uniform"

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    __hash__ = object.__hash__


def family(module: str):
    """Decorator for a family base class: gives it its own registry and alias table."""

    def decorate(base):
        base.module = module
        base.registry = {}
        base.aliases = {}
        return base

    return decorate


def register(*aliases: str):
    """Class decorator: register a class in its family under its class name and `aliases`."""

    def decorate(cls):
        cls.registry[cls.__name__] = cls
        for alias in aliases:
            cls.aliases[alias] = cls.__name__
        return cls

    return decorate


def serialize(obj: Configurable | None) -> dict | None:
    if obj is None:
        return None
    return {"module": obj.module, "class_name": type(obj).__name__, "config": obj.get_config(), "registered_name": None}


def get(base: type, identifier, argument: str):
    """Resolve `identifier` (None, an instance, a name, or a serialised dict) within `base`'s family."""
    if identifier is None or isinstance(identifier, base):
        return identifier
    if isinstance(identifier, str):
        class_name = base.aliases.get(identifier, identifier)
        if class_name not in base.registry:
            raise ValueError(
                f"Unknown {base.module.split('.')[-1][:-1]} {identifier!r} for `{argument}`. "
                f"Known names: {sorted(base.aliases) + sorted(base.registry)}."
            )
        return base.registry[class_name]()
    if isinstance(identifier, dict):
        class_name = identifier.get("class_name")
        cls = base.registry.get(class_name)
        if cls is None:
            raise ValueError(f"Unknown class {class_name!r} for `{argument}`; expected one of {sorted(base.registry)}.")
        config = identifier.get("config") or {}
        if not isinstance(config, dict):
            raise ValueError(f"The config of {class_name} for `{argument}` must be a dict; received {config!r}.")
        return cls.from_config(config)
    raise TypeError(f"`{argument}` must be None, a name, a config dict or a {base.__name__}; received {identifier!r}.")
