"""The text CNN: read labelled sentences, tokenize, train Kim's (2014) classifier, evaluate, predict.

from rankconv import text
data = text.read_dataset(["rt-polarity.pos", "rt-polarity.neg"], encoding="latin-1")
classifier = text.train_classifier(data.texts, data.labels, mode="rand")
classifier.save("mr.keras")
text.TextClassifier.load("mr.keras").predict(["a gorgeous, witty film"])
"""

from rankconv.text.model import MODES, kim_cnn
from rankconv.text.readers import DataError, Dataset, describe, read_dataset
from rankconv.text.tokenize import CLEANINGS, kim_sst_tokenize, kim_tokenize, whitespace_tokenize
from rankconv.text.training import (
    TextClassifier,
    cross_validate,
    evaluate_classifier,
    repeated_cross_validation,
    train_classifier,
)
from rankconv.text.vocabulary import TextVectorizer, Vocabulary
