"""Elementwise activations and softmax, under Keras 3's names and defaults."""

from __future__ import annotations

import numpy as np


def _float(x) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"Expected a numeric array; received dtype {x.dtype}.")
    return x if x.dtype.kind == "f" else x.astype(np.float32)


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    x = _float(x)
    y = np.where(x > threshold, x, negative_slope * (x - threshold) if negative_slope else 0).astype(x.dtype)
    return y if max_value is None else np.minimum(y, max_value).astype(x.dtype)


def leaky_relu(x, negative_slope=0.2):
    x = _float(x)
    return np.where(x > 0, x, negative_slope * x).astype(x.dtype)


def relu6(x):
    x = _float(x)
    return np.clip(x, 0, 6).astype(x.dtype)


def elu(x, alpha=1.0):
    x = _float(x)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype)


def selu(x):
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    return (scale * elu(x, alpha)).astype(_float(x).dtype)


def sigmoid(x):
    x = _float(x)
    # split by sign so exp never overflows
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


def tanh(x):
    return np.tanh(_float(x))


def softplus(x):
    x = _float(x)
    return (np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))).astype(x.dtype)


def softsign(x):
    x = _float(x)
    return x / (1 + np.abs(x))


def silu(x):
    x = _float(x)
    return x * sigmoid(x)


def _erf(x):
    # Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7, below float32 resolution near 1).
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def gelu(x, approximate=False):
    """Keras's `activations.gelu` default is the exact (erf) form; `approximate=True` is the tanh form."""
    x = _float(x)
    if approximate:
        inner = np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)
        return (0.5 * x * (1 + np.tanh(inner))).astype(x.dtype)
    return (0.5 * x * (1 + _erf(x / np.sqrt(2)))).astype(x.dtype)


def softmax(x, axis=-1):
    x = _float(x)
    shifted = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)
