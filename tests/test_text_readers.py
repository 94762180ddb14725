import os
from pathlib import Path

import pytest

from rankconv.text.readers import DataError, Dataset, describe, read_dataset

MR_DIR = Path(os.environ.get("RANKCONV_MR_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mr"))

POS = ["a gorgeous , witty film", "one of the year's best", "moving and funny", "a triumph"]
NEG = ["a dull , lifeless mess", "nothing works here", "tedious beyond words", "avoid it"]


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def lines(*rows: str) -> str:
    return "".join(row + "\n" for row in rows)


def label_text_rows(n: int = 20, sep: str = " ") -> list[str]:
    return [f"{'pos' if i % 2 else 'neg'}{sep}sentence number {i}" for i in range(n)]


def error(excinfo) -> str:
    message = str(excinfo.value)
    assert isinstance(excinfo.value, ValueError)
    return message


class TestOneFilePerClass:
    def test_shared_stem_names_classes_by_suffix(self, tmp_path):
        pos = write(tmp_path / "rt-polarity.pos", lines(*POS))
        neg = write(tmp_path / "rt-polarity.neg", lines(*NEG))
        data = read_dataset([pos, neg])
        assert isinstance(data, Dataset)
        assert data.layout == "one-file-per-class"
        assert data.texts == POS + NEG
        assert data.labels == ["pos"] * 4 + ["neg"] * 4
        assert "one-file-per-class" in data.report[0]
        assert "read 4 lines from rt-polarity.pos as class 'pos'" in data.report
        assert [(s.path, s.layout, s.lines, s.kept) for s in data.sources] == [
            (pos, "one-file-per-class", 4, 4),
            (neg, "one-file-per-class", 4, 4),
        ]
        assert describe(data).splitlines()[-1] == "2 classes: neg 4, pos 4"

    def test_different_stems_name_classes_by_stem(self, tmp_path):
        files = [write(tmp_path / "positive.txt", lines(*POS)), write(tmp_path / "negative.txt", lines(*NEG))]
        data = read_dataset(files)
        assert data.labels == ["positive"] * 4 + ["negative"] * 4
        assert data.classes == ["negative", "positive"]

    def test_text_kept_except_trailing_whitespace(self, tmp_path):
        write(tmp_path / "a.pos", "  leading kept \t \nmid\tdle tab  \n")
        write(tmp_path / "a.neg", "caf\u00e9 \u2026 ok\n")
        data = read_dataset(tmp_path)
        assert data.texts == ["caf\u00e9 \u2026 ok", "  leading kept", "mid\tdle tab"]

    def test_folder_input_skips_hidden_readme_license_and_subfolders(self, tmp_path):
        write(tmp_path / "b.pos", lines(*POS))
        write(tmp_path / "b.neg", lines(*NEG))
        write(tmp_path / ".hidden", "__label__x not data\n")
        write(tmp_path / "README.md", "# About\n")
        write(tmp_path / "LICENSE", "MIT\n")
        (tmp_path / "sub").mkdir()
        data = read_dataset(str(tmp_path))
        assert data.labels == ["neg"] * 4 + ["pos"] * 4  # sorted: b.neg before b.pos
        assert [s.path.name for s in data.sources] == ["b.neg", "b.pos"]
        note = next(line for line in data.report if line.startswith("folder "))
        assert "2 files" in note and "README.md" in note and "LICENSE" in note and ".hidden" not in note

    def test_several_folders_merge_classes(self, tmp_path):
        for split in ("train", "test"):
            (tmp_path / split).mkdir()
            write(tmp_path / split / "pos.txt", lines(*POS))
            write(tmp_path / split / "neg.txt", lines(*NEG))
        data = read_dataset([tmp_path / "train", tmp_path / "test"])
        assert data.class_counts() == {"neg": 8, "pos": 8}
        assert any(str(tmp_path / "test" / "pos.txt") in line for line in data.report)  # names disambiguated


class TestLabelText:
    def test_space_separated(self, tmp_path):
        rows = label_text_rows()
        data = read_dataset(write(tmp_path / "train.txt", lines(*rows)))
        assert data.layout == "label-text"
        assert "detected layout label-text" in data.report[0]
        assert data.texts[:2] == ["sentence number 0", "sentence number 1"]
        assert data.labels[:2] == ["neg", "pos"]
        assert len(data) == 20

    def test_trec_style_labels_and_tabs(self, tmp_path):
        rows = [
            "DESC:manner How did serfdom develop in and then leave Russia ?",
            "ENTY:cremat What films featured the character Popeye Doyle ?",
            "NUM:date\tWhen was Ozzy Osbourne born ?",
        ] * 5
        data = read_dataset(write(tmp_path / "trec.label", lines(*rows)))
        assert data.layout == "label-text"
        assert data.texts[0] == "How did serfdom develop in and then leave Russia ?"
        assert data.labels[:3] == ["DESC:manner", "ENTY:cremat", "NUM:date"]
        assert data.texts[2] == "When was Ozzy Osbourne born ?"

    def test_sst_style_numeric_labels(self, tmp_path):
        rows = [f"{i % 5} a gorgeous film {i}" for i in range(30)]
        data = read_dataset(write(tmp_path / "sst.txt", lines(*rows)))
        assert data.classes == ["0", "1", "2", "3", "4"]
        assert data.texts[3] == "a gorgeous film 3"

    def test_sst_files_as_distributed(self, tmp_path):
        # SST's stsa.* files: "LABEL sentence", tokenized and lower-cased, some lines with a trailing
        # space; a small test file may hold one sentence of a class ("0" below), which is kept
        rows = [f"{1 + i % 4} the film 's {i} minutes , and it 's {'not ' * (i % 2)}good . " for i in range(24)]
        rows.insert(5, "0 a dull , lifeless mess -- -lrb- really -rrb- . ")
        data = read_dataset(write(tmp_path / "stsa.fine.test", lines(*rows)))
        assert data.layout == "label-text" and data.classes == ["0", "1", "2", "3", "4"]
        assert data.texts[5] == "a dull , lifeless mess -- -lrb- really -rrb- ." and data.labels[5] == "0"
        assert len(data) == 25 and not any("skipped" in line for line in data.report)

    def test_subj_file_latin_1(self, tmp_path):
        rows = [f"{i % 2} {'the' if i % 3 else 'a'} na\xefve film {i} , caf\xe9 scenes" for i in range(20)]
        data = read_dataset(write(tmp_path / "subj.all", lines(*rows), encoding="latin-1"), encoding="latin-1")
        assert data.layout == "label-text" and data.class_counts() == {"0": 10, "1": 10}
        assert data.texts[1] == "the na\xefve film 1 , caf\xe9 scenes"

    def test_numbered_lines_are_not_labels(self, tmp_path):
        # every first word an integer, but each a different one: a numbered list, not labels
        write(tmp_path / "x.pos", lines(*[f"{i} a good film" for i in range(12)]))
        write(tmp_path / "x.neg", lines(*[f"{i} a bad film" for i in range(12)]))
        assert read_dataset(tmp_path).layout == "one-file-per-class"

    def test_empty_and_label_less_lines_reported(self, tmp_path):
        rows = label_text_rows(40)
        rows.insert(3, "")
        rows.insert(8, "   ")
        rows.insert(12, "stray sentence with no label")
        rows.insert(20, "pos")
        data = read_dataset(write(tmp_path / "train.txt", lines(*rows)))
        assert len(data) == 40
        assert "stray sentence with no label" not in data.texts
        assert "skipped 2 empty lines (file train.txt: lines 4, 9)" in data.report
        assert "skipped 1 line without a label (file train.txt: line 13)" in data.report
        assert "skipped 1 line with a label but no text (file train.txt: line 21)" in data.report
        assert "read 44 lines from train.txt as label-text (2 labels); kept 40" in data.report

    def test_plain_sentences_starting_with_common_words_are_not_label_text(self, tmp_path):
        write(tmp_path / "x.pos", lines(*[f"the film {i}" if i % 2 else f"a film {i}" for i in range(20)]))
        write(tmp_path / "x.neg", lines(*[f"the mess {i}" if i % 2 else f"a mess {i}" for i in range(20)]))
        assert read_dataset(tmp_path).layout == "one-file-per-class"

    def test_forced_layout_keeps_every_first_word(self, tmp_path):
        path = write(tmp_path / "few.txt", lines("pos great film", "neg bad film", "meh so so"))
        with pytest.raises(DataError, match="plain sentences"):
            read_dataset(path)  # 3 lines: too few to detect labels
        data = read_dataset(path, layout="label-text")
        assert data.labels == ["pos", "neg", "meh"]
        assert data.report[0] == "layout label-text (forced with layout='label-text')"
        assert read_dataset(path, layout="label_text").layout == "label-text"


class TestFastText:
    def test_labels_several_labels_and_missing_labels(self, tmp_path):
        rows = [
            "__label__pos a fine film",
            "__label__neg __label__bad a poor film",
            "no label on this line",
            "",
            "__label__pos",
            "__label__neg\tthe worst",
        ]
        data = read_dataset(write(tmp_path / "ft.txt", lines(*rows)))
        assert data.layout == "fasttext"
        assert "detected layout fasttext in ft.txt" in data.report[0]
        assert data.texts == ["a fine film", "a poor film", "the worst"]
        assert data.labels == ["pos", "neg", "neg"]
        assert "1 line with several labels (the first was taken) (file ft.txt: line 2)" in data.report
        assert "skipped 1 line without a label (file ft.txt: line 3)" in data.report
        assert "skipped 1 empty line (file ft.txt: line 4)" in data.report
        assert "skipped 1 line with a label but no text (file ft.txt: line 5)" in data.report


class TestTables:
    def test_csv_with_quoted_commas_and_embedded_newlines(self, tmp_path):
        text = 'id,Review,Sentiment\n1,"good, really good",pos\n2,"line one\nline two",neg\n3,plain text,pos\n'
        data = read_dataset(write(tmp_path / "reviews.csv", text))
        assert data.layout == "csv"
        assert data.texts == ["good, really good", "line one\nline two", "plain text"]
        assert data.labels == ["pos", "neg", "pos"]
        assert any("text column 'Review', label column 'Sentiment'" in line for line in data.report)
        assert any("row spanning several lines" in line and "line 3" in line for line in data.report)

    def test_csv_detected_from_header_without_extension(self, tmp_path):
        data = read_dataset(write(tmp_path / "data.txt", lines("label,text", "pos,fine", "neg,poor")))
        assert data.layout == "csv"
        assert data.texts == ["fine", "poor"]

    def test_tsv_by_extension_and_by_tab_header(self, tmp_path):
        body = lines("sentence\tlabel", '" the rock " is great\t1', "dull\t0")
        for name in ("sst.tsv", "sst.txt"):
            data = read_dataset(write(tmp_path / name, body))
            assert data.layout == "tsv"
            assert data.texts == ['" the rock " is great', "dull"]  # TSV quotes are literal
            assert data.labels == ["1", "0"]

    def test_explicit_columns_case_insensitive_imply_csv(self, tmp_path):
        path = write(tmp_path / "d.dat", lines("a,b,c", "x,pos,first", "y,neg,second"))
        data = read_dataset(path, text_column="C", label_column="b")
        assert data.layout == "csv"
        assert data.texts == ["first", "second"]
        assert data.report[0] == "layout csv (implied by text_column/label_column)"

    def test_unclosed_quote(self, tmp_path):
        path = write(tmp_path / "u.csv", lines("label,text", 'pos,"never closed', "neg,b", "pos,c"))
        with pytest.raises(DataError, match=r"u\.csv has a quote that is never closed: .* line 2 "):
            read_dataset(path)

    def test_unknown_column_lists_columns(self, tmp_path):
        path = write(tmp_path / "d.csv", lines("id,sentence,label", "1,fine,pos", "2,poor,neg"))
        with pytest.raises(DataError) as excinfo:
            read_dataset(path, text_column="review")
        assert "'review'" in error(excinfo) and "'id', 'sentence', 'label'" in error(excinfo)

    def test_unguessable_columns_list_columns(self, tmp_path):
        path = write(tmp_path / "d.csv", lines("foo,bar", "fine,pos"))
        with pytest.raises(DataError, match=r"which column of d\.csv holds the text \('foo', 'bar'\)"):
            read_dataset(path)

    def test_bad_rows_reported(self, tmp_path):
        text = lines("label,text", "pos,fine", "neg", ",no label", "", "neg,extra, commas, here", "pos,ok")
        data = read_dataset(write(tmp_path / "d.csv", text))
        assert data.texts == ["fine", "extra, commas, here", "ok"]
        assert "skipped 1 row with too few fields (file d.csv: line 3)" in data.report
        assert "skipped 1 row without a label (file d.csv: line 4)" in data.report
        assert "skipped 1 empty line (file d.csv: line 5)" in data.report
        assert any(line.startswith("1 row with more fields than the header") for line in data.report)


class TestEncodingAndLineEndings:
    def test_latin1_read_as_utf8_names_file_line_and_offset(self, tmp_path):
        write(tmp_path / "m.pos", "fine\nclich\u00e9 but fun\n", encoding="latin-1")
        write(tmp_path / "m.neg", "poor\nbad\n", encoding="latin-1")
        with pytest.raises(DataError) as excinfo:
            read_dataset(tmp_path)
        message = error(excinfo)
        assert "m.pos" in message and "line 2" in message and "0xe9" in message
        assert "byte offset 10 of the file" in message and "offset 5 within the line" in message
        assert "--encoding latin-1" in message
        data = read_dataset(tmp_path, encoding="latin-1")
        assert data.texts == ["poor", "bad", "fine", "clich\u00e9 but fun"]

    def test_latin1_0x85_is_not_a_line_break(self, tmp_path):
        write(tmp_path / "m.pos", "wait\x85 what\nok\n", encoding="latin-1")
        write(tmp_path / "m.neg", "no\n", encoding="latin-1")
        data = read_dataset(tmp_path, encoding="latin-1")
        assert data.texts == ["no", "wait\x85 what", "ok"]

    def test_bom_removed(self, tmp_path):
        write(tmp_path / "d.csv", "\ufefftext,label\nfine,pos\npoor,neg\n")
        data = read_dataset(tmp_path / "d.csv")
        assert data.texts == ["fine", "poor"]
        assert "removed the UTF-8 byte-order mark at the start of d.csv" in data.report

    def test_crlf_and_cr_endings(self, tmp_path):
        write(tmp_path / "e.pos", "one\r\ntwo \r\n\r\nthree")
        write(tmp_path / "e.neg", "four\rfive\r")
        data = read_dataset(tmp_path)
        assert data.texts == ["four", "five", "one", "two", "three"]
        assert "skipped 1 empty line (file e.pos: line 3)" in data.report

    def test_crlf_csv(self, tmp_path):
        data = read_dataset(write(tmp_path / "d.csv", 'text,label\r\n"a,\r\nb",pos\r\nc,neg\r\n'))
        assert data.texts == ["a,\nb", "c"]

    def test_unknown_encoding(self, tmp_path):
        with pytest.raises(DataError, match="unknown encoding"):
            read_dataset(tmp_path, encoding="no-such-codec")


class TestErrors:
    def test_missing_path(self, tmp_path):
        with pytest.raises(DataError, match="no such file or folder"):
            read_dataset([tmp_path / "nope.txt"])

    def test_empty_file(self, tmp_path):
        write(tmp_path / "a.pos", lines(*POS))
        write(tmp_path / "a.neg", "")
        with pytest.raises(DataError, match=r"a\.neg is empty"):
            read_dataset(tmp_path)

    def test_blank_file_has_no_usable_lines(self, tmp_path):
        write(tmp_path / "a.pos", lines(*POS))
        write(tmp_path / "a.neg", "\n  \n\n")
        with pytest.raises(DataError, match=r"a\.neg has no text: all its 3 lines are empty"):
            read_dataset(tmp_path)

    def test_no_usable_lines_after_skipping(self, tmp_path):
        path = write(tmp_path / "ft.txt", lines("__label__pos", "__label__neg"))
        with pytest.raises(DataError, match="no usable lines: 2 lines with a label but no text"):
            read_dataset(path)

    def test_mixed_layouts_name_files_and_layouts(self, tmp_path):
        write(tmp_path / "a.txt", lines(*label_text_rows()))
        write(tmp_path / "b.txt", lines(*POS))
        with pytest.raises(DataError) as excinfo:
            read_dataset(tmp_path)
        message = error(excinfo)
        assert "a.txt looks like label-text" in message and "b.txt looks like plain sentences" in message

    def test_one_class(self, tmp_path):
        path = write(tmp_path / "ft.txt", lines("__label__pos good", "__label__pos fine"))
        with pytest.raises(DataError, match=r"only one class was found \('pos', 2 lines\).*at least two"):
            read_dataset(path)

    def test_single_plain_file(self, tmp_path):
        with pytest.raises(DataError, match="one such file per class"):
            read_dataset(write(tmp_path / "only.txt", lines(*POS)))

    def test_unknown_layout_and_conflicting_options(self, tmp_path):
        path = write(tmp_path / "d.csv", lines("text,label", "a,b"))
        with pytest.raises(DataError, match="unknown layout 'xml'"):
            read_dataset(path, layout="xml")
        with pytest.raises(DataError, match="csv and tsv layouts only"):
            read_dataset(path, layout="fasttext", text_column="text")


def test_real_mr_files():
    if not MR_DIR.is_dir():
        pytest.skip(f"MR data not found at {MR_DIR} (set RANKCONV_MR_DIR to the folder holding rt-polarity.pos/.neg)")
    data = read_dataset(MR_DIR, encoding="latin-1")
    assert data.layout == "one-file-per-class"
    assert len(data.texts) == len(data.labels) == 10_662
    assert data.class_counts() == {"neg": 5_331, "pos": 5_331}
    assert describe(data).splitlines()[-1] == "2 classes: neg 5,331, pos 5,331"


SHARED = Path(os.environ.get("RANKCONV_DATA_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


@pytest.mark.parametrize(
    "name,encoding,counts",
    [
        ("sst/stsa.fine.train", "utf-8", {"0": 1_092, "1": 2_218, "2": 1_624, "3": 2_322, "4": 1_288}),
        ("sst/stsa.fine.dev", "utf-8", {"0": 139, "1": 289, "2": 229, "3": 279, "4": 165}),
        ("sst/stsa.fine.test", "utf-8", None),
        ("sst/stsa.binary.train", "utf-8", None),
        ("sst/stsa.binary.dev", "utf-8", None),
        ("sst/stsa.binary.test", "utf-8", {"0": 912, "1": 909}),
        ("subj/subj.all", "latin-1", {"0": 5_000, "1": 5_000}),
    ],
)
def test_real_sst_and_subj_files(name, encoding, counts):
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"{path} not found (set RANKCONV_DATA_DIR to the folder holding sst/ and subj/)")
    data = read_dataset(path, encoding=encoding)
    assert data.layout == "label-text" and not any("skipped" in line for line in data.report)
    sizes = {"stsa.fine.test": 2_210, "stsa.binary.train": 6_920, "stsa.binary.dev": 872, "stsa.fine.train": 8_544}
    if counts:
        assert data.class_counts() == counts
    else:
        assert len(data) == sizes[path.name]
