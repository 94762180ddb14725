"""Keras's own examples (keras-team/keras-io), ported to tests that run them twice.

Each test file holds one example as a function `example(keras)`: its body is the example's code,
changed only where the file's header says (imports, data loading, sizes, TensorFlow-only calls).
The `keras` fixture binds that name to `rankconv` or to the real Keras 3 module, so the same body
runs under both: a port that only works with rankconv (or only with Keras) fails here.

Parametrize a test with `@pytest.mark.parametrize("keras", ["rankconv", "keras"], indirect=True)`.
Where rankconv still lacks something the example uses, its case is instead
`pytest.param("rankconv", marks=pytest.mark.xfail(strict=True, reason="rankconv lacks ..."))`:
when the missing piece lands that case starts to pass, the strict xfail fails the run, and the
mark has to go.
"""

import importlib

import numpy as np
import pytest

from oracles import keras as _keras


def _contiguous_nll_loss(nll_loss):
    def wrapper(input, *args, **kwargs):
        return nll_loss(input.contiguous(), *args, **kwargs)

    return wrapper


@pytest.fixture
def keras(request, tmp_path, monkeypatch):
    """`rankconv` or Keras 3, seeded, with the working directory in a temporary folder (the
    examples write their checkpoints to relative paths)."""
    if request.param == "rankconv":
        module = importlib.import_module("rankconv")
    else:
        module = _keras()
        # Keras's torch `sparse_categorical_crossentropy` (probabilities, not logits) hands
        # `torch.nn.functional.nll_loss` the class axis moved to position 1, a non-contiguous
        # tensor; for per-pixel targets (N-D input) torch 2.13's CPU backward of `nll_loss` then
        # raises "RuntimeError: grad_input must be contiguous". A contiguous copy gives the same
        # values and lets the segmentation example train on the oracle too.
        import torch

        monkeypatch.setattr(torch.nn.functional, "nll_loss", _contiguous_nll_loss(torch.nn.functional.nll_loss))
    monkeypatch.chdir(tmp_path)
    np.random.seed(1337)
    module.utils.set_random_seed(1337)
    return module
