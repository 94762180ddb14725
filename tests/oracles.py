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
