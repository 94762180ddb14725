"""Activations by name, as Keras's `activations.get` resolves them."""

from __future__ import annotations

from collections.abc import Callable

from rankconv.ops import nn


def linear(x):
    return x


def gelu(x, approximate=False):
    """Keras's `activations.gelu`: the exact (erf) form unless `approximate=True`."""
    return nn.gelu(x, approximate=approximate)


_BY_NAME: dict[str, Callable] = {
    "linear": linear,
    "relu": nn.relu,
    "leaky_relu": nn.leaky_relu,
    "relu6": nn.relu6,
    "elu": nn.elu,
    "selu": nn.selu,
    "sigmoid": nn.sigmoid,
    "tanh": nn.tanh,
    "softplus": nn.softplus,
    "softsign": nn.softsign,
    "silu": nn.silu,
    "swish": nn.silu,
    "gelu": gelu,
    "softmax": nn.softmax,
}


def get(identifier) -> Callable:
    """`None` → linear; a name → that activation; a callable is returned as it is."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        try:
            return _BY_NAME[identifier]
        except KeyError:
            raise ValueError(f"Unknown activation {identifier!r}. Known activations: {sorted(_BY_NAME)}.") from None
    if callable(identifier):
        return identifier
    raise TypeError(f"`activation` must be a name, a callable or None; received {identifier!r}.")


def name_of(activation: Callable) -> str | None:
    """The name `activation` is known by, or None for a callable that is not a named activation."""
    for name, fn in _BY_NAME.items():
        if fn is activation:
            return name
    return None


def serialize(activation: Callable) -> str:
    """The name Keras writes in a layer config (`"linear"` for no activation)."""
    for name, fn in _BY_NAME.items():
        if fn is activation:
            return name
    raise ValueError(
        f"Activation {activation!r} is not one of the named activations, so it cannot be written to a config."
    )
