"""One loaded model serving several threads at once (`predict`, `__call__`, the text predictor,
`evaluate`), and training and inference on the same model at once refused with a clear error."""

import threading

import numpy as np
import pytest

from rankconv import layers, ops, optimizers, saving, utils
from rankconv.layers import Layer
from rankconv.models import Sequential
from rankconv.ops import conv_common
from rankconv.ops.autodiff import GradientTape
from rankconv.text.corpus import planted_corpus
from rankconv.text.model import kim_cnn
from rankconv.text.training import TextClassifier
from rankconv.text.vocabulary import TextVectorizer

THREADS, CALLS = 8, 200
BATCH_SIZES = (1, 3, 9, 24)


def run_threads(work, count=THREADS, timeout=120):
    """`work(index)` in `count` threads started together; the errors they raised, and whether all ended."""
    errors, start = [], threading.Barrier(count)

    def body(index):
        try:
            start.wait()
            work(index)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "threads still running: a deadlock?"
    return errors


@pytest.fixture(scope="module")
def image_model(tmp_path_factory):
    utils.set_random_seed(3)
    model = Sequential(
        [
            layers.Input((16, 16, 8)),
            layers.Conv2D(16, 3, padding="same", activation="relu"),  # big enough for the worker pool
            layers.BatchNormalization(),
            layers.MaxPooling2D(),
            layers.DepthwiseConv2D(3, activation="relu"),
            layers.Conv2DTranspose(8, 3, strides=2),
            layers.GlobalAveragePooling2D(),
            layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizers.Adam(), "sparse_categorical_crossentropy", metrics=["accuracy"])
    path = tmp_path_factory.mktemp("threads") / "image.keras"
    model.save(path)
    return saving.load_model(path)


@pytest.fixture(scope="module")
def text_classifier(tmp_path_factory):
    texts, _, _ = planted_corpus(200)
    vectorizer = TextVectorizer.fit(texts)
    model = kim_cnn(len(vectorizer.vocabulary), 2, embedding_dim=24, filters=16, length=vectorizer.length, seed=1)
    path = tmp_path_factory.mktemp("threads") / "text.keras"
    TextClassifier(model, vectorizer, ["neg", "pos"]).save(path)
    return TextClassifier.load(path), texts


def test_the_worker_pool_is_in_use(image_model):
    x = np.zeros((BATCH_SIZES[-1], 16, 16, 8), "float32")
    call = conv_common.ConvCall(x.shape, (3, 3, 8, 16), (1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1), x.dtype)
    assert conv_common.THREADS > 1 and call.threads > 1  # else this file tests nothing about the pool


def test_predict_and_call_from_eight_threads_equal_single_threaded_results(image_model):
    rng = np.random.default_rng(0)
    inputs = {n: rng.standard_normal((n, 16, 16, 8)).astype("float32") for n in BATCH_SIZES}
    expected = {n: image_model.predict(x, batch_size=64, verbose=0) for n, x in inputs.items()}
    mismatches = []

    def work(index):
        order = np.random.default_rng(index)
        for call in range(CALLS):
            n = BATCH_SIZES[order.integers(len(BATCH_SIZES))]
            if call % 2:
                got = image_model(inputs[n], training=False)
            else:
                got = image_model.predict(inputs[n], batch_size=64, verbose=0)
            if not isinstance(got, np.ndarray) or not np.allclose(got, expected[n], rtol=1e-5, atol=1e-6):
                mismatches.append((index, call, n))

    assert run_threads(work) == []
    assert mismatches == []


def test_the_text_predictor_from_eight_threads(text_classifier):
    classifier, texts = text_classifier
    chunks = [texts[:1], texts[:5], texts[10:40], texts[:64]]
    expected = [classifier.predict_proba(chunk) for chunk in chunks]
    labels = [classifier.predict(chunk) for chunk in chunks]
    mismatches = []

    def work(index):
        order = np.random.default_rng(index)
        for call in range(CALLS):
            k = int(order.integers(len(chunks)))
            if call % 2:
                if classifier.predict(chunks[k]) != labels[k]:
                    mismatches.append((index, call, k))
            elif not np.allclose(classifier.predict_proba(chunks[k]), expected[k], rtol=1e-5, atol=1e-6):
                mismatches.append((index, call, k))

    assert run_threads(work) == []
    assert mismatches == []


def test_evaluate_from_several_threads(image_model):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((30, 16, 16, 8)).astype("float32")
    y = rng.integers(0, 3, 30)
    expected = image_model.evaluate(x, y, batch_size=7, verbose=0, return_dict=True)
    results = []

    def work(index):
        for _ in range(5):
            results.append(image_model.evaluate(x, y, batch_size=7, verbose=0, return_dict=True))

    assert run_threads(work, count=4) == []
    for result in results:
        assert result.keys() == expected.keys()
        for key in expected:
            assert result[key] == pytest.approx(expected[key], rel=1e-5)


def test_a_tape_in_one_thread_does_not_record_another_thread_s_inference(image_model):
    """Tapes are per thread: a thread differentiating through the model's weights does not turn
    another thread's outputs into traced values (nor mix their operations into its graph)."""
    x = np.random.default_rng(2).standard_normal((5, 16, 16, 8)).astype("float32")
    expected = image_model.predict(x, verbose=0)
    inside, done = threading.Event(), threading.Event()
    found = {}

    def differentiate():
        with GradientTape(image_model.trainable_weights) as tape:
            loss = ops.sum(image_model(x, training=False))
            inside.set()
            done.wait(30)
        found["grads"] = tape.gradient(loss)

    thread = threading.Thread(target=differentiate)
    thread.start()
    assert inside.wait(30)
    outputs = [image_model(x, training=False) for _ in range(3)]
    done.set()
    thread.join(30)
    for output in outputs:
        assert type(output) is np.ndarray
        np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-6)
    assert all(g is not None for g in found["grads"])


# ----------------------------------------------------------------------------- train while infer


def small_model():
    utils.set_random_seed(0)
    model = Sequential([layers.Input((6,)), layers.Dense(4, activation="relu"), layers.Dense(2)])
    model.compile(optimizers.SGD(0.01), "mse")
    return model


class PauseInFit:
    """A callback that holds `fit` after its first batch until released."""

    def __init__(self):
        from rankconv.callbacks import Callback

        self.inside, self.release = threading.Event(), threading.Event()
        outer = self

        class Pause(Callback):
            def on_train_batch_end(self, batch, logs=None):
                if batch == 0:
                    outer.inside.set()
                    outer.release.wait(30)

        self.callback = Pause()


def test_inference_while_another_thread_trains_is_refused():
    model = small_model()
    x, y = np.ones((20, 6), "float32"), np.zeros((20, 2), "float32")
    pause, errors = PauseInFit(), []
    trainer = threading.Thread(
        target=lambda: model.fit(x, y, batch_size=5, epochs=1, verbose=0, callbacks=[pause.callback])
    )
    trainer.start()
    assert pause.inside.wait(30)
    try:
        for attempt in (
            lambda: model.predict(x, verbose=0),
            lambda: model.evaluate(x, y, verbose=0),
            lambda: model.predict_on_batch(x),
            lambda: model(x),  # a bare call of the model: refused by the model, like predict
            lambda: model.layers[0](x),  # a layer's call: its weights are claimed by the training thread
            lambda: model.fit(x, y, verbose=0),
        ):
            with pytest.raises(RuntimeError, match="another thread") as error:
                attempt()
            errors.append(str(error.value))
    finally:
        pause.release.set()
        trainer.join(30)
    assert "while another thread is training it" in errors[0] and "'sequential" in errors[0]
    assert "`__call__` was called on model 'sequential" in errors[3]
    assert "is being trained in another thread" in errors[4]
    # once training is over, inference works again, from any thread
    assert run_threads(lambda i: model.predict(x, verbose=0), count=2) == []


def test_training_while_another_thread_predicts_is_refused():
    release, inside = threading.Event(), threading.Event()

    class Gate(Layer):
        def call(self, inputs):
            inside.set()
            release.wait(30)
            return inputs

    model = Sequential([layers.Input((6,)), layers.Dense(2), Gate()])
    model.compile(optimizers.SGD(0.01), "mse")
    x, y = np.ones((4, 6), "float32"), np.zeros((4, 2), "float32")
    predictor = threading.Thread(target=lambda: model.predict(x, verbose=0))
    predictor.start()
    assert inside.wait(30)
    try:
        with pytest.raises(
            RuntimeError, match=r"while inference calls \(`predict`, `evaluate`\) from 1 other thread\(s\) run on it"
        ):
            model.fit(x, y, verbose=0)
        with pytest.raises(RuntimeError, match="inference calls"):
            model.train_on_batch(x, y)
    finally:
        release.set()
        predictor.join(30)
    model.fit(x, y, verbose=0)  # and then it trains


def test_inference_inside_fit_from_the_training_thread_is_fine():
    model = small_model()
    x, y = np.ones((20, 6), "float32"), np.zeros((20, 2), "float32")
    seen = []
    from rankconv.callbacks import Callback

    class PredictEachEpoch(Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self.model.predict(x, verbose=0))
            self.model.train_on_batch(x, y)  # nested training in the same thread too

    model.fit(x, y, epochs=2, verbose=0, validation_data=(x, y), callbacks=[PredictEachEpoch()])
    assert len(seen) == 2
