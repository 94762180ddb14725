"""rankconv.text.embeddings: reading word2vec/GloVe files and Kim's embedding initialisation.

Every file is written here, in tmp_path, the way the original tools write it.
"""

import bz2
import gzip
import pathlib
import types

import numpy as np
import pytest

from rankconv.text import embeddings
from rankconv.text.embeddings import FORMATS, WordVectors, embedding_matrix, load_vectors

WORDS = ["the", ",", "café", "日本語", "New_York", "don't", "<unk>"]


def random_vectors(n, dim, seed=0):
    return np.random.default_rng(seed).normal(0.0, 0.5, (n, dim)).astype(np.float32)


def write_binary(path, words, vectors, newline=True, header=None):
    """As word2vec.c writes it (`fprintf("%s ")`, fwrite of the floats, then "\\n"); gensim omits the "\\n"."""
    with open(path, "wb") as f:
        f.write((header if header is not None else f"{len(words)} {vectors.shape[1]}\n").encode())
        for word, vector in zip(words, vectors):
            f.write(word.encode("utf-8") + b" " + vector.astype("<f4").tobytes() + (b"\n" if newline else b""))
    return path


def number(x):
    return repr(float(x))  # exact: float32 -> float64 is exact and repr round-trips


def text_lines(words, vectors, trailing_space=False):
    end = " \n" if trailing_space else "\n"  # word2vec.c writes "%lf " after every number
    return [word + " " + " ".join(number(x) for x in vector) + end for word, vector in zip(words, vectors)]


def write_word2vec_text(path, words, vectors, trailing_space=False):
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(f"{len(words)} {vectors.shape[1]}\n")
        f.writelines(text_lines(words, vectors, trailing_space))
    return path


def write_glove(path, words, vectors):
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.writelines(text_lines(words, vectors))
    return path


WRITERS = {
    "word2vec-binary": lambda path, words, vectors: write_binary(path / "v.bin", words, vectors),
    "word2vec-text": lambda path, words, vectors: write_word2vec_text(path / "v.vec", words, vectors),
    "glove": lambda path, words, vectors: write_glove(path / "v.txt", words, vectors),
}


def write_raw(path, data: bytes):
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------------------------------- formats


class TestFormats:
    @pytest.mark.parametrize("newline", [True, False], ids=["word2vec", "gensim"])
    def test_word2vec_binary_round_trip(self, tmp_path, newline):
        vectors = random_vectors(len(WORDS), 5)
        path = write_binary(tmp_path / "v.bin", WORDS, vectors, newline=newline)
        wv = load_vectors(path)
        assert wv.format == "word2vec-binary"
        assert wv.words == WORDS
        assert wv.vectors.dtype == np.float32 and wv.vectors.flags.c_contiguous
        np.testing.assert_array_equal(wv.vectors, vectors)
        assert wv.dim == 5 and len(wv) == len(WORDS) and wv.path == str(path)
        assert wv.index == {word: i for i, word in enumerate(WORDS)}
        assert "café" in wv and "cafe" not in wv
        np.testing.assert_array_equal(wv["日本語"], vectors[3])

    @pytest.mark.parametrize("trailing_space", [False, True])
    def test_word2vec_text_round_trip(self, tmp_path, trailing_space):
        vectors = random_vectors(len(WORDS), 4)
        wv = load_vectors(write_word2vec_text(tmp_path / "v.vec", WORDS, vectors, trailing_space))
        assert wv.format == "word2vec-text" and wv.words == WORDS and wv.dim == 4
        np.testing.assert_array_equal(wv.vectors, vectors)

    def test_glove_round_trip(self, tmp_path):
        vectors = random_vectors(len(WORDS), 3)
        wv = load_vectors(write_glove(tmp_path / "glove.txt", WORDS, vectors))
        assert wv.format == "glove" and wv.words == WORDS and wv.dim == 3
        np.testing.assert_array_equal(wv.vectors, vectors)

    def test_word2vec_text_as_written_with_percent_lf(self, tmp_path):
        path = write_raw(tmp_path / "v.txt", b"2 3\n</s> 0.004003 0.004419 -0.003830 \nin -0.1 1e-3 2 \n")
        wv = load_vectors(path)
        np.testing.assert_array_equal(wv.vectors, np.array([[0.004003, 0.004419, -0.003830], [-0.1, 1e-3, 2]], "f4"))
        assert wv.words == ["</s>", "in"]

    @pytest.mark.parametrize("fmt", FORMATS)
    def test_detection_and_explicit_format(self, tmp_path, fmt):
        vectors = random_vectors(len(WORDS), 6, seed=1)
        path = WRITERS[fmt](tmp_path, WORDS, vectors)
        assert load_vectors(path).format == fmt
        explicit = load_vectors(path, format=fmt)
        assert explicit.format == fmt and explicit.words == WORDS
        np.testing.assert_array_equal(explicit.vectors, vectors)

    def test_explicit_format_for_binary_floats_that_look_like_text(self, tmp_path):
        vector = np.frombuffer(b"abcdefgh", dtype="<f4")  # its bytes are letters: undetectable as binary
        path = write_binary(tmp_path / "tiny.bin", ["w"], vector[None, :])
        with pytest.raises(ValueError, match="Line 2"):
            load_vectors(path)  # read as word2vec text, as documented
        wv = load_vectors(path, format="word2vec-binary")
        np.testing.assert_array_equal(wv["w"], vector)

    def test_path_like_crlf_bom_and_blank_lines(self, tmp_path):
        data = "\ufeffthe 1 2\r\n\r\nof 3 4.5\r\n\r\n\n".encode()
        wv = load_vectors(pathlib.Path(write_raw(tmp_path / "v.txt", data)))
        assert wv.words == ["the", "of"] and wv.path == str(tmp_path / "v.txt")
        np.testing.assert_array_equal(wv.vectors, [[1, 2], [3, 4.5]])

    def test_repeated_word_keeps_its_first_vector(self, tmp_path):
        vectors = random_vectors(3, 2)
        for fmt in FORMATS:
            wv = load_vectors(WRITERS[fmt](tmp_path, ["a", "b", "a"], vectors))
            assert wv.words == ["a", "b"], fmt
            np.testing.assert_array_equal(wv.vectors, vectors[:2])

    @pytest.mark.parametrize("fmt", ["word2vec-binary", "word2vec-text"])
    def test_header_with_no_vectors(self, tmp_path, fmt):
        wv = load_vectors(write_raw(tmp_path / "v", b"0 300\n"), format=fmt)
        assert len(wv) == 0 and wv.vectors.shape == (0, 300) and wv.dim == 300

    def test_binary_records_across_chunk_boundaries(self, tmp_path, monkeypatch):
        monkeypatch.setattr(embeddings, "_CHUNK_BYTES", 7)  # every record straddles a read
        words = [f"w{i}" * (i % 5 + 1) for i in range(40)]
        vectors = random_vectors(40, 3, seed=2)
        for newline in (True, False):
            path = write_binary(tmp_path / f"v{newline}.bin", words, vectors, newline=newline)
            wv = load_vectors(path)
            assert wv.words == words
            np.testing.assert_array_equal(wv.vectors, vectors)
            np.testing.assert_array_equal(load_vectors(path, words[::7]).vectors, vectors[::7])

    def test_row_buffer_grows_when_the_size_estimate_is_low(self, tmp_path, monkeypatch):
        monkeypatch.setattr(embeddings, "_estimate_rows", lambda size, first_line: 1)
        vectors = random_vectors(50, 2)
        wv = load_vectors(write_glove(tmp_path / "v.txt", [f"w{i}" for i in range(50)], vectors))
        np.testing.assert_array_equal(wv.vectors, vectors)

    def test_word_vectors_object(self):
        wv = WordVectors(["a", "b"], [[1, 2], [3, 4]])
        assert wv.dim == 2 and wv.vectors.dtype == np.float32 and list(wv) == ["a", "b"]
        assert wv.get("zz") is None and wv.get("b").tolist() == [3, 4]
        with pytest.raises(KeyError, match="zz"):
            wv["zz"]
        with pytest.raises(ValueError, match="more than once"):
            WordVectors(["a", "a"], np.zeros((2, 2)))
        with pytest.raises(ValueError, match="one row of `vectors` per word"):
            WordVectors(["a"], np.zeros((2, 2)))
        assert "2 words, dim=2" in repr(wv)


# ------------------------------------------------------------------------------------------- vocabulary, limit


class TestVocabularyAndLimit:
    @pytest.mark.parametrize("fmt", FORMATS)
    def test_vocabulary_keeps_only_wanted_words_in_file_order(self, tmp_path, fmt):
        vectors = random_vectors(len(WORDS), 4, seed=3)
        path = WRITERS[fmt](tmp_path, WORDS, vectors)
        wanted = (word for word in ["<unk>", "café", "absent", "the"])  # any iterable, any order
        wv = load_vectors(path, wanted)
        assert wv.words == ["the", "café", "<unk>"]
        np.testing.assert_array_equal(wv.vectors, vectors[[0, 2, 6]])
        assert len(load_vectors(path, [])) == 0

    @pytest.mark.parametrize("fmt", FORMATS)
    def test_limit_counts_vectors_in_the_file_before_filtering(self, tmp_path, fmt):
        vectors = random_vectors(len(WORDS), 4, seed=4)
        path = WRITERS[fmt](tmp_path, WORDS, vectors)
        wv = load_vectors(path, limit=3)
        assert wv.words == WORDS[:3]
        np.testing.assert_array_equal(wv.vectors, vectors[:3])
        assert load_vectors(path, ["the", "café", "New_York"], limit=3).words == ["the", "café"]
        assert load_vectors(path, limit=100).words == WORDS

    def test_limit_stops_before_a_wrong_count_or_a_bad_line(self, tmp_path):
        data = b"5 2\na 1 2\nb 3 4\nc oops\n"
        assert load_vectors(write_raw(tmp_path / "v.vec", data), limit=2).words == ["a", "b"]
        vectors = random_vectors(2, 3)
        path = write_binary(tmp_path / "v.bin", ["a", "b"], vectors, header="9 3\n")
        assert load_vectors(path, limit=2).words == ["a", "b"]

    def test_vocabulary_in_a_latin_1_binary_file(self, tmp_path):
        vectors = random_vectors(2, 3)
        with open(tmp_path / "v.bin", "wb") as f:
            f.write(b"2 3\n")
            for word, vector in zip(["café", "naïve"], vectors):
                f.write(word.encode("latin-1") + b" " + vector.tobytes() + b"\n")
        wv = load_vectors(tmp_path / "v.bin", ["naïve", "日本"], encoding="latin-1")
        assert wv.words == ["naïve"]
        np.testing.assert_array_equal(wv.vectors, vectors[1:])
        assert load_vectors(tmp_path / "v.bin", encoding="latin-1").words == ["café", "naïve"]

    def test_vocabulary_must_not_be_a_string(self, tmp_path):
        path = write_glove(tmp_path / "v.txt", ["a"], random_vectors(1, 2))
        with pytest.raises(TypeError, match="single string"):
            load_vectors(path, "a")
        with pytest.raises(TypeError, match="only strings"):
            load_vectors(path, ["a", 1])


class TestGloveWordsWithSpaces:
    def test_leading_fields_join_into_the_word(self, tmp_path):
        data = ", 0.5 1 2\nnew york -1 -2 -3\n. . . 4 5 6\nat  home 7 8 9\n"
        path = write_raw(tmp_path / "glove.840B.txt", data.encode())
        wv = load_vectors(path)
        assert wv.words == [",", "new york", ". . .", "at  home"]
        np.testing.assert_array_equal(wv["new york"], [-1, -2, -3])
        np.testing.assert_array_equal(wv[". . ."], [4, 5, 6])
        assert load_vectors(path, ["new york"]).words == ["new york"]

    def test_word2vec_text_does_not_join(self, tmp_path):
        path = write_raw(tmp_path / "v.vec", b"2 2\na 1 2\nnew york 3 4\n")
        with pytest.raises(
            ValueError, match=r"Line 3 .* has 4 fields, but the vectors have 2 dimensions \(from its header\)"
        ):
            load_vectors(path)


# -------------------------------------------------------------------------------------------- embedding_matrix


class TestEmbeddingMatrix:
    VOCABULARY = ["<pad>", "<oov>", "the", "café", "zebra-crossing", "<unk>", "qwertyuiop"]

    def vectors(self):
        words = ["café", "the", "<oov>", "<unk>", "unused"]
        return WordVectors(words, random_vectors(len(words), 8, seed=5), path="v.bin")

    def test_found_rows_are_copied_others_random_padding_and_oov_zero(self):
        wv = self.vectors()
        matrix, found = embedding_matrix(self.VOCABULARY, wv, dim=8, seed=0)
        assert matrix.shape == (7, 8) and matrix.dtype == np.float32
        assert found == 3  # the, café, <unk>; never the OOV row
        for row, word in [(2, "the"), (3, "café"), (5, "<unk>")]:
            np.testing.assert_array_equal(matrix[row], wv[word])
        np.testing.assert_array_equal(matrix[0], 0.0)  # padding
        np.testing.assert_array_equal(matrix[1], 0.0)  # OOV: never the file's "<oov>" vector
        for row in (4, 6):
            assert np.all(np.abs(matrix[row]) <= 0.25) and np.all(matrix[row] != 0)

    def test_reproducible_with_a_seed(self):
        wv = self.vectors()
        a, _ = embedding_matrix(self.VOCABULARY, wv, dim=8, seed=42)
        b, _ = embedding_matrix(self.VOCABULARY, wv, dim=8, seed=42)
        c, _ = embedding_matrix(self.VOCABULARY, wv, dim=8, seed=43)
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a[[1, 4, 6]], c[[1, 4, 6]])
        np.testing.assert_array_equal(a[[0, 2, 3, 5]], c[[0, 2, 3, 5]])
        # A word's random row does not depend on which other words have vectors.
        rand, _ = embedding_matrix(self.VOCABULARY, None, dim=8, seed=42)
        np.testing.assert_array_equal(a[[1, 4, 6]], rand[[1, 4, 6]])  # (row 1, the OOV row, is zero in both)

    def test_cnn_rand_is_uniform_within_scale(self):
        words = ["<pad>", "<oov>"] + [f"w{i}" for i in range(998)]
        matrix, found = embedding_matrix(words, seed=0)
        assert found == 0 and matrix.shape == (1000, 300)
        np.testing.assert_array_equal(matrix[:2], 0.0)  # padding and OOV
        rest = matrix[2:]
        assert rest.min() >= -0.25 and rest.max() <= 0.25
        assert rest.min() < -0.249 and rest.max() > 0.249 and abs(rest.mean()) < 0.005
        assert np.count_nonzero(rest) == rest.size
        small, _ = embedding_matrix(words[:10], dim=4, seed=0, scale=0.01)
        assert np.abs(small).max() <= np.float32(0.01)

    def test_mapping_vocabulary_object_and_no_special_rows(self):
        vocabulary = types.SimpleNamespace(words=["a", "b", "c"])  # like rankconv.text.vocabulary.Vocabulary
        matrix, found = embedding_matrix(
            vocabulary, {"a": [1, 2], "c": (3, 4)}, dim=2, padding_index=None, oov_index=None
        )
        assert found == 2
        np.testing.assert_array_equal(matrix[[0, 2]], [[1, 2], [3, 4]])
        assert np.all(matrix[1] != 0)

    def test_loaded_vectors_end_to_end(self, tmp_path):
        vectors = random_vectors(len(WORDS), 5)
        path = write_binary(tmp_path / "v.bin", WORDS, vectors)
        vocabulary = ["<pad>", "<oov>", "the", "xyz", "New_York"]
        matrix, found = embedding_matrix(vocabulary, load_vectors(path, vocabulary), dim=5, seed=1)
        assert found == 2
        np.testing.assert_array_equal(matrix[[2, 4]], vectors[[0, 4]])

    def test_dimension_mismatch_is_a_clear_error(self):
        with pytest.raises(
            ValueError, match=r"`dim`=300 does not match the 8-dimensional word vectors from 'v.bin'; pass dim=8"
        ):
            embedding_matrix(self.VOCABULARY, self.vectors())
        with pytest.raises(ValueError, match="does not match the vector of 'a'"):
            embedding_matrix(["<pad>", "<oov>", "a"], {"a": [1.0, 2.0]}, dim=3)

    @pytest.mark.parametrize(
        "kwargs, message",
        [
            ({"padding_index": 7}, "`padding_index`=7 is outside the vocabulary of 7 words"),
            ({"oov_index": -1}, "`oov_index`=-1 is outside"),
            ({"oov_index": 0}, "must differ"),
            ({"dim": 0}, "`dim` must be a positive integer"),
            ({"scale": 0.0}, "`scale` must be a positive number"),
        ],
    )
    def test_bad_arguments(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            embedding_matrix(self.VOCABULARY, **kwargs)

    def test_bad_argument_types(self):
        with pytest.raises(TypeError, match="single string"):
            embedding_matrix("the")
        with pytest.raises(TypeError, match="`word_vectors` must be"):
            embedding_matrix(self.VOCABULARY, [[0.0] * 300])


# ---------------------------------------------------------------------------------------------------- errors


class TestErrors:
    def test_missing_file(self, tmp_path):
        with pytest.raises(ValueError, match=r"Word-vector file '.*nope\.bin' does not exist\.") as info:
            load_vectors(tmp_path / "nope.bin")
        assert isinstance(info.value, FileNotFoundError)
        with pytest.raises(ValueError, match="is a directory"):
            load_vectors(tmp_path)

    def test_empty_file(self, tmp_path):
        with pytest.raises(ValueError, match=r"Word-vector file '.*empty\.txt' is empty\."):
            load_vectors(write_raw(tmp_path / "empty.txt", b""))
        with pytest.raises(ValueError, match="contains no word vectors"):
            load_vectors(write_raw(tmp_path / "blank.txt", b"\n \n"))

    def test_compressed_file(self, tmp_path):
        path = tmp_path / "v.bin.gz"
        with gzip.open(path, "wb") as f:
            f.write(b"1 1\na 1\n")
        with pytest.raises(ValueError, match="is gzip-compressed; extract it first"):
            load_vectors(path)
        path = write_raw(tmp_path / "v.bin.bz2", bz2.compress(b"1 1\na 1\n"))
        with pytest.raises(ValueError, match="is bzip2-compressed"):
            load_vectors(path)
        assert load_vectors(write_raw(tmp_path / "v.txt", b"BZh 1 2\n")).words == ["BZh"]

    @pytest.mark.parametrize(
        "data, fmt, message",
        [
            (
                b"a 1 2 3\nb 1 2\n",
                None,
                r"Line 2 of word-vector file '.*' has 3 fields, but the vectors have 3 dimensions \(from line 1\)",
            ),
            (b"a 1 2 3\nb\n", None, "Line 2 .* has 1 fields"),
            (b"a\n", None, "Line 1 .* has a single field"),
            (
                b"2 3\na 1 2 3\nb 1 2\n",
                None,
                r"Line 3 .* has 3 fields, but the vectors have 3 dimensions \(from its header\)",
            ),
            (b"2 3\na 1 2 3\nb 1 2 3 4\n", None, "Line 3 .* has 5 fields"),
            (b"a 1 2\nb 1 x2\n", None, r"Line 2 .* has 'x2' where a number was expected \(field 3\)"),
            (b"2 2\na 1 2\nb 1,5 2\n", None, r"Line 3 .* has '1,5' where a number was expected \(field 2\)"),
            (b"a 1 2\nsan  francisco 1 0x3\n", "glove", r"Line 2 .* has '0x3' .*\(field 5\)"),
            (b"a 1 2\nb 1  2\n", "glove", r"Line 2 .* has an empty field .*\(field 3\)"),  # word 'b 1', then '', '2'
            (b"a 1 2 3\nb 1  2\n", "glove", r"Line 2 .* has an empty field \(two spaces in a row\) .*\(field 3\)"),
            (b"3 2\na 1 2\nb 1 2\n", None, r"ends after 2 vectors \(line 3\), but its header declares 3"),
            (b"1 2\na 1 2\nb 1 2\n", None, r"Line 3 .* is one vector more than the 1 that its header declares"),
            (b"the 1 2\n", "word2vec-text", r"Line 1 .* should be the '<count> <dim>' header .* format='glove'"),
            (b"3 0\n", "word2vec-text", "declares vectors of dimension 0"),
        ],
    )
    def test_malformed_text(self, tmp_path, data, fmt, message):
        path = write_raw(tmp_path / "bad.txt", data)
        with pytest.raises(ValueError, match=message) as info:
            load_vectors(path, format=fmt)
        assert "bad.txt" in str(info.value)

    def test_malformed_lines_of_unwanted_words_are_still_caught(self, tmp_path):
        path = write_raw(tmp_path / "bad.txt", b"a 1 2\nb 1\nc 3 4\n")
        with pytest.raises(ValueError, match="Line 2"):
            load_vectors(path, ["a", "c"])

    def test_truncated_binary(self, tmp_path):
        vectors = random_vectors(3, 4)
        whole = write_binary(tmp_path / "whole.bin", ["a", "bb", "ccc"], vectors).read_bytes()
        for cut, where in [(len(whole) - 5, "vector 3"), (len(whole) - 2 - 16 - 3, "vector 3"), (4, "vector 1")]:
            path = write_raw(tmp_path / "cut.bin", whole[:cut])
            with pytest.raises(
                ValueError,
                match=rf"'.*cut\.bin' ends early: .* declares 3 vectors of dimension 4, but {where} \(from byte offset \d+\) is cut short",
            ):
                load_vectors(path, format="word2vec-binary")
        with pytest.raises(ValueError, match="ends early"):
            load_vectors(write_raw(tmp_path / "cut.bin", whole[:-5]), ["a"])  # also when filtering

    def test_binary_with_a_wrong_header(self, tmp_path):
        vectors = random_vectors(3, 4)
        path = write_binary(tmp_path / "v.bin", ["a", "b", "c"], vectors, header="2 4\n")
        with pytest.raises(
            ValueError, match=r"has 20 bytes after the 2 vectors of dimension 4 that its header declares"
        ):
            load_vectors(path)
        path = write_binary(tmp_path / "v.bin", ["a", "b", "c"], vectors, header="3 3\n")
        with pytest.raises(
            ValueError,
            match=r"Word 2 of .*v.bin' \(at byte offset 18\) contains binary data, so the records do not line up with the header's dimension 3",
        ):
            load_vectors(path)
        with pytest.raises(ValueError, match=r"v.bin' (ends early|has \d+ bytes after)"):
            load_vectors(path, ["a"])  # not decoding the other words, the end of the file gives it away
        path = write_binary(tmp_path / "v.bin", ["a"], vectors[:1], header="one 4\n")
        with pytest.raises(ValueError, match=r"Line 1 .* should be the '<count> <dim>' header of the word2vec-binary"):
            load_vectors(path, format="word2vec-binary")

    def test_text_encoding_error_names_line_and_byte_offset(self, tmp_path):
        data = b"a 1 2\nb 3 4\ncaf\xe9 5 6\n"
        path = write_raw(tmp_path / "latin.txt", data)
        offset = data.index(b"\xe9")
        with pytest.raises(
            ValueError,
            match=rf"Line 3 of .*latin\.txt' is not valid utf-8 \(byte 0xe9 at byte offset {offset}\); pass encoding=\"latin-1\"",
        ):
            load_vectors(path)
        assert load_vectors(path, encoding="latin-1").words == ["a", "b", "café"]

    def test_binary_encoding_error_names_word_and_byte_offset(self, tmp_path):
        vectors = random_vectors(2, 2)
        with open(tmp_path / "v.bin", "wb") as f:
            f.write(b"2 2\nok " + vectors[0].tobytes() + b"\ncaf\xe9 " + vectors[1].tobytes() + b"\n")
        offset = (tmp_path / "v.bin").read_bytes().index(b"\xe9")
        with pytest.raises(
            ValueError,
            match=rf"Word 2 of .* is not valid utf-8 \(byte 0xe9 at byte offset {offset}\); pass encoding=\"latin-1\"",
        ):
            load_vectors(tmp_path / "v.bin")
        assert load_vectors(tmp_path / "v.bin", encoding="latin-1").words == ["ok", "café"]

    @pytest.mark.parametrize(
        "kwargs, message",
        [
            ({"format": "fasttext"}, "`format` must be None"),
            ({"limit": 0}, "`limit` must be None or a positive integer"),
            ({"limit": True}, "`limit` must be"),
            ({"limit": 2.5}, "`limit` must be"),
            ({"encoding": "no-such-codec"}, "Unknown `encoding`"),
        ],
    )
    def test_bad_arguments(self, tmp_path, kwargs, message):
        path = write_glove(tmp_path / "v.txt", ["a"], random_vectors(1, 2))
        with pytest.raises(ValueError, match=message):
            load_vectors(path, **kwargs)
