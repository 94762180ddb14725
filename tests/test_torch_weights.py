"""PyTorch weights both ways (`rankconv.saving.load_torch_weights` / `save_torch_weights`), with
torch as the oracle: the same architecture built in both, weights moved each way, the same outputs."""

import numpy as np
import pytest

from rankconv import layers, saving
from rankconv.models import Sequential
from rankconv.saving import torch_weights
from rankconv.text.model import kim_cnn

from oracles import require
from oracles import torch as _torch

torch = _torch()
nn = torch.nn
safetensors_torch = require("safetensors.torch")

TOLERANCE = 1e-5  # of the output's scale


def assert_close(got, want):
    scale = max(float(np.abs(want).max()), 1e-3)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE * scale)


def torch_predict(module, x, channels_first_axes=None):
    """`module` on `x` (rankconv's channels-last layout, moved to torch's when `channels_first_axes`)."""
    module.eval()
    with torch.no_grad():
        tensor = torch.from_numpy(np.ascontiguousarray(x))
        if channels_first_axes:
            tensor = tensor.permute(*channels_first_axes)
        return module(tensor).numpy()


def randomise_torch(module, seed=0):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.dtype.is_floating_point:
                values = torch.randn(tensor.shape, generator=generator) * 0.5
                tensor.copy_(values.abs() + 0.5 if "running_var" in name else values)


def randomise(model, seed=0):
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        value = rng.standard_normal(variable.shape) * 0.5
        variable.value[...] = np.abs(value) + 0.5 if "variance" in variable.name else value
    return model


# ----------------------------------------------------------------------------- Kim's CNN


class TorchKim(nn.Module):
    def __init__(self, vocab=50, dim=8, windows=(3, 4, 5), filters=4, classes=2, dropout=0.5):
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim)
        self.convs = nn.ModuleList(nn.Conv1d(dim, filters, w) for w in windows)
        self.dropout, self.keep = nn.Dropout(dropout), 1 - dropout
        self.classes = nn.Linear(filters * len(windows), classes)

    def forward(self, ids):
        x = self.embedding(ids.long()).transpose(1, 2)  # (batch, dim, steps)
        pooled = [torch.relu(conv(x)).amax(dim=2) for conv in self.convs]
        features = self.dropout(torch.cat(pooled, dim=1)) * self.keep
        return torch.softmax(self.classes(features), dim=1)


def kim_inputs():
    return np.random.default_rng(3).integers(0, 50, (6, 20)).astype("int32")


def test_kim_cnn_from_a_torch_state_dict_by_order():
    module = TorchKim()
    randomise_torch(module)
    model = kim_cnn(50, 2, embedding_dim=8, filters=4, length=20, max_norm=0)
    saving.load_torch_weights(model, module.state_dict())  # tensors, paired by order
    assert_close(model.predict(kim_inputs(), verbose=0), torch_predict(module, kim_inputs()))


def test_kim_cnn_to_torch_through_a_safetensors_file(tmp_path):
    model = randomise(kim_cnn(50, 2, embedding_dim=8, filters=4, length=20, max_norm=0))
    mapping = {"embedding": "embedding", "ngram_3": "convs.0", "ngram_4": "convs.1", "ngram_5": "convs.2"}
    mapping["classes"] = "classes"
    saving.save_torch_weights(model, tmp_path / "kim.safetensors", mapping=mapping)
    module = TorchKim()
    module.load_state_dict(safetensors_torch.load_file(tmp_path / "kim.safetensors"))  # strict: every key
    assert_close(torch_predict(module, kim_inputs()), model.predict(kim_inputs(), verbose=0))


# ----------------------------------------------------------------------------- an image CNN with BatchNorm


def rankconv_image_cnn():
    return Sequential(
        [
            layers.Input((8, 8, 2)),
            layers.Conv2D(4, 3, padding="same"),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.MaxPooling2D(),
            layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu"),  # grouped in torch
            layers.Conv2D(6, 3, groups=2, activation="relu"),
            layers.Flatten(),  # Keras flattens (rows, cols, channels), torch (channels, rows, cols)
            layers.BatchNormalization(),
            layers.Dense(10, activation="softmax"),
        ]
    )


def torch_image_cnn():
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.BatchNorm2d(4, eps=1e-3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, padding=1, groups=4),
        nn.ReLU(),
        nn.Conv2d(8, 6, 3, groups=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.BatchNorm1d(24, eps=1e-3),
        nn.Linear(24, 10),
        nn.Softmax(dim=1),
    )


def image_inputs():
    return np.random.default_rng(4).standard_normal((5, 8, 8, 2)).astype("float32")


def test_image_cnn_with_batch_norm_from_a_torch_safetensors_file(tmp_path):
    module = torch_image_cnn()
    randomise_torch(module)
    safetensors_torch.save_file(module.state_dict(), tmp_path / "cnn.safetensors")  # keeps no order of its own
    model = rankconv_image_cnn()
    saving.load_torch_weights(model, tmp_path / "cnn.safetensors")  # "0" < "1" < "4" < "6" < "9" < "10"
    assert_close(model.predict(image_inputs(), verbose=0), torch_predict(module, image_inputs(), (0, 3, 1, 2)))
    # and the running statistics are rankconv's moving ones
    np.testing.assert_array_equal(model.layers[1].moving_variance.numpy(), module[1].running_var.numpy())


def test_image_cnn_to_torch_and_back(tmp_path):
    model = randomise(rankconv_image_cnn())
    names = [layer.name for layer in model.layers if layer.weights]
    mapping = dict(zip(names, ["0", "1", "4", "6", "9", "10"]))
    saving.save_torch_weights(model, tmp_path / "for_torch.safetensors", mapping=mapping)
    module = torch_image_cnn()
    module.load_state_dict(safetensors_torch.load_file(tmp_path / "for_torch.safetensors"))  # strict
    assert_close(torch_predict(module, image_inputs(), (0, 3, 1, 2)), model.predict(image_inputs(), verbose=0))
    # rankconv → file → rankconv: the file records the model's order, so pairing by order works
    saving.save_torch_weights(model, tmp_path / "own.safetensors")
    again = rankconv_image_cnn()
    saving.load_torch_weights(again, tmp_path / "own.safetensors")
    for a, b in zip(model.weights, again.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


# ----------------------------------------------------------------------------- transposed, separable, norms


def test_transposed_convolutions_both_ways():
    model = randomise(
        Sequential(
            [
                layers.Input((5, 4, 3)),
                layers.Conv2DTranspose(4, 3, strides=2, activation="relu"),
                layers.Conv2DTranspose(2, 4, strides=2),
            ]
        )
    )
    module = nn.Sequential(nn.ConvTranspose2d(3, 4, 3, stride=2), nn.ReLU(), nn.ConvTranspose2d(4, 2, 4, stride=2))
    state = torch_weights.torch_state_dict(model, {model.layers[0].name: "0", model.layers[1].name: "2"})
    module.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    x = np.random.default_rng(5).standard_normal((3, 5, 4, 3)).astype("float32")
    want = torch_predict(module, x, (0, 3, 1, 2)).transpose(0, 2, 3, 1)
    assert_close(model.predict(x, verbose=0), want)
    randomise_torch(module, seed=7)
    saving.load_torch_weights(model, module.state_dict())
    assert_close(model.predict(x, verbose=0), torch_predict(module, x, (0, 3, 1, 2)).transpose(0, 2, 3, 1))
    # 3-D: (k, k, k, out, in) ↔ (in, out, k, k, k)
    model = Sequential([layers.Input((3, 3, 3, 2)), layers.Conv3DTranspose(3, 2, strides=2, use_bias=False)])
    module = nn.ConvTranspose3d(2, 3, 2, stride=2, bias=False)
    randomise_torch(module)
    saving.load_torch_weights(model, module.state_dict())
    x = np.random.default_rng(6).standard_normal((2, 3, 3, 3, 2)).astype("float32")
    assert_close(model.predict(x, verbose=0), torch_predict(module, x, (0, 4, 1, 2, 3)).transpose(0, 2, 3, 4, 1))


def test_separable_conv_and_layer_normalization_with_a_mapping():
    model = Sequential(
        [
            layers.Input((9, 3)),
            layers.SeparableConv1D(4, 3, depth_multiplier=2, name="separable"),
            layers.LayerNormalization(name="norm"),
            layers.Dense(2, name="head"),
        ]
    )

    class Module(nn.Module):
        def __init__(self):
            super().__init__()
            self.dw = nn.Conv1d(3, 6, 3, groups=3, bias=False)
            self.pw = nn.Conv1d(6, 4, 1)
            self.norm = nn.LayerNorm(4, eps=1e-3)
            self.head = nn.Linear(4, 2)

        def forward(self, x):  # x: (batch, steps, channels)
            y = self.pw(self.dw(x.transpose(1, 2))).transpose(1, 2)
            return self.head(self.norm(y))

    module = Module()
    randomise_torch(module)
    mapping = {"separable": ("dw", "pw"), "norm": "norm", "head": "head"}
    saving.load_torch_weights(model, module.state_dict(), mapping=mapping)
    x = np.random.default_rng(8).standard_normal((4, 9, 3)).astype("float32")
    assert_close(model.predict(x, verbose=0), torch_predict(module, x))
    state = torch_weights.torch_state_dict(model, mapping)
    assert sorted(state) == sorted(module.state_dict())


# ----------------------------------------------------------------------------- errors


def test_a_shape_mismatch_names_both_sides_and_assigns_nothing():
    module = torch_image_cnn()
    state = module.state_dict()
    state["10.weight"] = torch.zeros(10, 25)
    model = rankconv_image_cnn()
    before = [w.numpy().copy() for w in model.weights]
    with pytest.raises(ValueError, match=r"layer 'dense\w*' \(Dense\).*'10\.weight' of shape \(10, 24\).*\(10, 25\)"):
        saving.load_torch_weights(model, state)
    for a, b in zip(before, model.weights):
        np.testing.assert_array_equal(a, b.numpy())


def test_pairing_errors_are_clear(tmp_path):
    model = rankconv_image_cnn()
    state = torch_image_cnn().state_dict()
    with pytest.raises(ValueError, match="6 layers with weights.*source has 5"):
        saving.load_torch_weights(model, {k: v for k, v in state.items() if not k.startswith("10.")})
    with pytest.raises(ValueError, match="`mapping` names layer 'nope'"):
        saving.load_torch_weights(model, state, mapping={"nope": "0"})
    with pytest.raises(ValueError, match="torch module '99'"):
        saving.load_torch_weights(model, state, mapping={model.layers[0].name: "99"})
    with pytest.raises(ValueError, match="pair of module prefixes"):
        separable = Sequential([layers.Input((9, 3)), layers.SeparableConv1D(4, 3, name="s")])
        saving.load_torch_weights(separable, {"dw.weight": np.zeros((3, 1, 3))}, mapping={"s": "dw"})
    with pytest.raises(ValueError, match="non-zero 'dw.bias'"):
        saving.load_torch_weights(
            separable,
            {
                "dw.weight": np.zeros((3, 1, 3)),
                "dw.bias": np.ones(3),
                "pw.weight": np.zeros((4, 3, 1)),
                "pw.bias": np.zeros(4),
            },
            mapping={"s": ("dw", "pw")},
        )
    no_bias = Sequential([layers.Input((3,)), layers.Dense(2, use_bias=False)])
    with pytest.raises(ValueError, match=r"tensors \['fc.bias'\].*no place for"):
        saving.load_torch_weights(no_bias, {"fc.weight": np.zeros((2, 3)), "fc.bias": np.zeros(2)})
    with pytest.raises(TypeError, match="a dict of arrays"):
        saving.load_torch_weights(model, [1, 2])
    with pytest.raises(ValueError, match=r"\.safetensors"):
        saving.load_torch_weights(model, tmp_path / "weights.pt")
    with pytest.raises(ValueError, match=r"end in '\.safetensors'"):
        saving.save_torch_weights(model, tmp_path / "weights.pt")
    assert not list(tmp_path.iterdir())
