"""Tokenizer, vocabulary, vectorizer, Kim's builder and training recipe on small generated data."""

import numpy as np
import pytest

from rankconv.text.model import kim_cnn
from rankconv.text.tokenize import get_tokenizer, kim_tokenize, whitespace_tokenize
from rankconv.text.training import TextClassifier, cross_validate, evaluate_classifier, train_classifier
from rankconv.text.vocabulary import OOV, PADDING, TextVectorizer, Vocabulary


def test_kim_tokenizer_rules():
    assert kim_tokenize("It's not good, isn't it? (Really!)") == [
        "it",
        "'s",
        "not",
        "good",
        ",",
        "is",
        "n't",
        "it",
        "?",
        "(",
        "really",
        "!",
        ")",
    ]
    assert kim_tokenize("We'll see; they'd've  gone…") == ["we", "'ll", "see", "they", "'d", "'ve", "gone"]
    assert kim_tokenize("Keep Case", lower=False) == ["Keep", "Case"]
    # as Kim's clean_str, a clitic splits off wherever it occurs, not only at a word's end
    assert kim_tokenize("it'sa, they'dn't") == ["it", "'sa", ",", "they", "'d", "n't"]
    assert kim_tokenize("   ") == []
    assert whitespace_tokenize("a  b\tc") == ["a", "b", "c"]
    with pytest.raises(ValueError, match="Unknown tokenizer 'nltk'"):
        get_tokenizer("nltk")


def test_vocabulary_ids_and_limits():
    vocabulary = Vocabulary.build([["b", "a", "b"], ["c", "b", "a"]], min_count=2)
    assert vocabulary.words == [PADDING, OOV, "b", "a"]
    assert vocabulary.ids(["a", "zzz", "b"]) == [3, 1, 2]
    assert Vocabulary.build([["x", "y", "x"]], max_size=3).words == [PADDING, OOV, "x"]
    with pytest.raises(ValueError, match="`min_count`"):
        Vocabulary.build([], min_count=0)


def test_vectorizer_pads_for_the_widest_filter_and_round_trips():
    vectorizer = TextVectorizer.fit(["a good film", "bad"], windows=(2, 5))
    assert vectorizer.pad == 4 and vectorizer.length == 3 + 8
    ids = vectorizer(["bad", "a completely unknown film here"])
    assert ids.shape == (2, 11) and ids.dtype == np.int32
    assert list(ids[0]) == [0, 0, 0, 0, vectorizer.vocabulary.index["bad"], 0, 0, 0, 0, 0, 0]
    assert list(ids[1, 4:7]) == [vectorizer.vocabulary.index["a"], 1, 1]  # truncated to max_tokens
    clone = TextVectorizer.from_config(vectorizer.get_config())
    np.testing.assert_array_equal(clone(["a bad film"]), vectorizer(["a bad film"]))
    with pytest.raises(TypeError, match="list of texts"):
        vectorizer("a single string")


@pytest.mark.parametrize("mode", ["rand", "static", "nonstatic", "multichannel"])
def test_kim_cnn_modes(mode):
    embeddings = np.random.default_rng(0).uniform(-0.25, 0.25, (30, 8)).astype("float32")
    model = kim_cnn(
        30,
        3,
        embedding_dim=8,
        windows=(2, 3),
        filters=4,
        embeddings=None if mode == "rand" else embeddings,
        mode=mode,
        length=12,
    )
    trainable = {v.path.split("/")[0] for v in model.trainable_weights}
    if mode == "static":
        assert "embedding" not in trainable
    if mode == "multichannel":
        assert "nonstatic_embedding" in trainable and "static_embedding" not in trainable
    assert model.predict(np.zeros((2, 12), "int32"), verbose=0).shape == (2, 3)


def test_kim_initialization_and_max_norm_follow_kims_code():
    # Kim's code for ReLU convolutions: U[-0.01, 0.01]; the output layer starts at zero. His dropout
    # keeps features unscaled in training and scales them by 1 - p at test time; max-norm s bounds
    # the output layer's weight vectors.
    model = kim_cnn(50, 2, embedding_dim=30, windows=(3, 5), filters=40, length=20, seed=0, dropout=0.5, max_norm=3.0)
    for width in (3, 5):
        kernel = model.get_layer(f"ngram_{width}").kernel.numpy()
        assert kernel.shape == (width, 30, 40)
        assert 0.009 < np.abs(kernel).max() <= 0.01
    classes = model.get_layer("classes")
    assert not classes.kernel.numpy().any()
    # padding (id 0) and unknown words (id 1) start as zero vectors, the rest U[-0.25, 0.25]
    table = model.get_layer("embedding").embeddings.numpy()
    assert not table[:2].any() and 0.24 < np.abs(table[2:]).max() <= 0.25
    assert classes.kernel_constraint.max_value == 3.0
    features = np.random.default_rng(1).random((4000, 80)).astype("float32") + 1
    dropout, kept = model.get_layer("dropout"), model.get_layer("kept_fraction")
    np.testing.assert_allclose(kept(dropout(features, training=False)), 0.5 * features, rtol=1e-6)
    trained = kept(dropout(features, training=True))
    assert set(np.unique(trained == features)) == {False, True}  # dropped or passed unscaled
    np.testing.assert_array_equal(trained[trained != 0], features[trained != 0])
    keras_style = kim_cnn(50, 2, embedding_dim=30, windows=(3,), filters=40, length=20, initialization="keras")
    glorot = np.sqrt(6 / (3 * 30 + 3 * 40))
    assert 0.02 < np.abs(keras_style.get_layer("ngram_3").kernel.numpy()).max() <= glorot
    assert keras_style.get_layer("classes").kernel.numpy().any()


def test_kim_cnn_refusals():
    with pytest.raises(ValueError, match="`initialization`"):
        kim_cnn(10, 2, initialization="he")
    with pytest.raises(ValueError, match="needs pretrained `embeddings`"):
        kim_cnn(10, 2, mode="static")
    with pytest.raises(ValueError, match="`mode`"):
        kim_cnn(10, 2, mode="dynamic")
    with pytest.raises(ValueError, match="at least 2 classes"):
        kim_cnn(10, 1)


def planted_corpus(n=400, seed=0):
    """Positive sentences contain "good" (not after "not"), negative ones "bad" or "not good"."""
    rng = np.random.default_rng(seed)
    filler = ["the", "film", "was", "plot", "a", "acting", "really", "and", "story", "it"]
    texts, labels = [], []
    for _ in range(n):
        words = list(rng.choice(filler, rng.integers(3, 9)))
        label = rng.choice(["pos", "neg"])
        phrase = ["good"] if label == "pos" else (["bad"] if rng.random() < 0.5 else ["not", "good"])
        at = rng.integers(0, len(words) + 1)
        texts.append(" ".join(words[:at] + phrase + words[at:]))
        labels.append(str(label))
    return texts, labels


def test_train_evaluate_save_and_load(tmp_path):
    texts, labels = planted_corpus()
    classifier = train_classifier(texts, labels, epochs=16, embedding_dim=16, filters=8, windows=(1, 2, 3), verbose=0)
    report = evaluate_classifier(classifier, *planted_corpus(200, seed=1))
    assert report["accuracy"] > 0.95
    assert sum(map(sum, report["confusion"])) == 200 and set(report["per_class"]) == {"neg", "pos"}
    # Kim's set_zero: the padding word's vector stays zero through training, the rest moved.
    table = classifier.model.get_layer("embedding").embeddings.numpy()
    assert not table[0].any() and table[2:].any()
    classifier.save(tmp_path / "text.keras")
    loaded = TextClassifier.load(tmp_path / "text.keras")
    assert loaded.classes == ["neg", "pos"]
    np.testing.assert_allclose(
        loaded.predict_proba(["not good at all", "a good film"]),
        classifier.predict_proba(["not good at all", "a good film"]),
        rtol=1e-6,
    )
    assert loaded.predict(["the film was good", "the film was not good"]) == ["pos", "neg"]


def test_cross_validation_runs_selected_folds():
    texts, labels = planted_corpus(200)
    seen = []
    result = cross_validate(
        texts,
        labels,
        folds=5,
        run_folds=[2, 4],
        epochs=3,
        embedding_dim=8,
        filters=4,
        windows=(1, 2),
        verbose=0,
        on_fold=seen.append,
    )
    assert [f["fold"] for f in result["folds"]] == [2, 4] == [f["fold"] for f in seen]
    assert 0 <= result["mean"] <= 1 and result["k"] == 5
    with pytest.raises(ValueError, match="`run_folds` must lie in 1..5"):
        cross_validate(texts, labels, folds=5, run_folds=[6])


def test_training_refuses_one_class():
    with pytest.raises(ValueError, match="at least two classes"):
        train_classifier(["a", "b"], ["x", "x"])


def test_best_dev_epoch_keeps_the_later_of_equal_epochs_as_kim():
    from rankconv.text.training import BestDevEpoch

    class FakeModel:
        def __init__(self):
            self.weights_now, self.restored = None, None

        def get_weights(self):
            return [self.weights_now]

        def set_weights(self, weights):
            self.restored = weights

    model = FakeModel()
    keeper = BestDevEpoch("val_accuracy")
    keeper.set_model(model) if hasattr(keeper, "set_model") else setattr(keeper, "model", model)
    keeper.on_train_begin()
    for epoch, accuracy in enumerate([0.70, 0.75, 0.74, 0.75, 0.73]):
        model.weights_now = f"epoch {epoch}"
        keeper.on_epoch_end(epoch, {"val_accuracy": accuracy})
    keeper.on_train_end()
    assert keeper.best_epoch == 3 and model.restored == ["epoch 3"]
