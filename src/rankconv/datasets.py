"""Keras's `datasets` namespace, without the downloads: rankconv never goes to the network.

`rankconv.datasets.mnist.load_data()` (and the other Keras data sets) exist so that Keras code
fails with a clear message instead of an AttributeError: each raises
`rankconv.utils.DownloadNotSupportedError` naming the file Keras would fetch and how to read it as
NumPy arrays yourself, which rankconv's `fit`, `evaluate` and `predict` take directly.

    from rankconv.datasets import mnist      # or: import rankconv.datasets.mnist
    mnist.load_data()                        # DownloadNotSupportedError: … how to load mnist.npz …
"""

from __future__ import annotations

import sys
import types

from rankconv.utils import DownloadNotSupportedError

_KERAS_DATA = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"

# (what Keras fetches, how to read it once downloaded)
_SOURCES = {
    "mnist": (
        f"{_KERAS_DATA}mnist.npz",
        'with np.load("mnist.npz") as f: (x_train, y_train), (x_test, y_test) = '
        '(f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])',
    ),
    "fashion_mnist": (
        f"{_KERAS_DATA}{{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte.gz (four files)",
        "read each with gzip.open: labels are np.frombuffer(data, np.uint8, offset=8), images "
        "np.frombuffer(data, np.uint8, offset=16).reshape(-1, 28, 28)",
    ),
    "cifar10": (
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "unpack it; data_batch_1…5 and test_batch are pickles (load only a file you trust) of dicts: "
        "d = pickle.load(f, encoding='bytes'); x = np.asarray(d[b'data']).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1) "
        "(channels last), y = np.asarray(d[b'labels'])",
    ),
    "cifar100": (
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "unpack it; train and test are pickles (load only a file you trust) of dicts: "
        "d = pickle.load(f, encoding='bytes'); x = np.asarray(d[b'data']).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1) "
        "(channels last), y = np.asarray(d[b'fine_labels']) (or b'coarse_labels')",
    ),
    "imdb": (
        f"{_KERAS_DATA}imdb.npz",
        'np.load("imdb.npz", allow_pickle=True) (only for a file you trust) holds x_train, y_train, x_test, '
        "y_test; the reviews are lists of word ids, which rankconv.utils.pad_sequences turns into one array",
    ),
    "reuters": (
        f"{_KERAS_DATA}reuters.npz",
        'np.load("reuters.npz", allow_pickle=True) (only for a file you trust) holds x and y; split them '
        "yourself, and pad the id lists with rankconv.utils.pad_sequences",
    ),
    "boston_housing": (
        f"{_KERAS_DATA}boston_housing.npz",
        'with np.load("boston_housing.npz") as f: x, y = f["x"], f["y"] (then split them yourself)',
    ),
    "california_housing": (
        f"{_KERAS_DATA}california_housing.npz",
        'with np.load("california_housing.npz") as f: x, y = f["x"], f["y"] (then split them yourself)',
    ),
}

_WORD_INDEXES = {"imdb": "imdb_word_index.json", "reuters": "reuters_word_index.json"}


def _refuse(dataset: str, function: str):
    def refuse(*args, **kwargs):
        if function == "get_word_index":
            source = f"{_KERAS_DATA}{_WORD_INDEXES[dataset]}"
            how = f'json.load(open("{_WORD_INDEXES[dataset]}")) gives the word → id dictionary'
        else:
            source, how = _SOURCES[dataset]
        raise DownloadNotSupportedError(
            f"rankconv does not download data sets: keras.datasets.{dataset}.{function}() fetches {source}. "
            f"Download it yourself, then load NumPy arrays: {how}. rankconv's fit/evaluate/predict take the "
            "arrays as they are."
        )

    refuse.__name__ = function
    refuse.__qualname__ = f"{dataset}.{function}"
    refuse.__doc__ = (
        f"Keras's `datasets.{dataset}.{function}`: raises DownloadNotSupportedError (rankconv does not download)."
    )
    return refuse


def _dataset_module(dataset: str) -> types.ModuleType:
    module = types.ModuleType(f"{__name__}.{dataset}", f"Keras's `datasets.{dataset}`; rankconv does not download it.")
    module.load_data = _refuse(dataset, "load_data")
    if dataset in _WORD_INDEXES:
        module.get_word_index = _refuse(dataset, "get_word_index")
    # `import rankconv.datasets.mnist` works as for a submodule
    sys.modules[module.__name__] = module
    return module


boston_housing = _dataset_module("boston_housing")
california_housing = _dataset_module("california_housing")
cifar10 = _dataset_module("cifar10")
cifar100 = _dataset_module("cifar100")
fashion_mnist = _dataset_module("fashion_mnist")
imdb = _dataset_module("imdb")
mnist = _dataset_module("mnist")
reuters = _dataset_module("reuters")

__all__ = [
    "DownloadNotSupportedError",
    "boston_housing",
    "california_housing",
    "cifar10",
    "cifar100",
    "fashion_mnist",
    "imdb",
    "mnist",
    "reuters",
]
