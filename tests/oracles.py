"""Imports of the oracle libraries (Keras 3, PyTorch) for the oracle test files.

Oracle tests never skip: if an oracle is missing, the test file fails to import with a message
saying how to install it, so a run without them cannot pass by accident.
"""

import importlib
import os


def require(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        raise ImportError(
            f"The oracle tests need `{module_name}` ({error}). Install the test extra: pip install -e '.[test]'"
        ) from error


def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    module = require("keras")
    return module


def torch():
    module = require("torch")
    module.set_num_threads(2)
    return module


def without_onednn():
    """A block in which PyTorch convolves with its own kernels instead of oneDNN's. PyTorch 2.13's
    oneDNN path gets some 3-D convolutions wrong: a one-channel input whose channels-first view
    comes from a channels-last array (as Keras's torch backend makes it), cubic 3×3×3, stride 2 on
    the last axis, batch 2 or more (`test_pytorch_onednn_conv3d_bug_is_known`). Float64 loop
    references agree with rankconv there."""
    return torch().backends.mkldnn.flags(enabled=False)
