"""`rankconv explain --html`: the page is well-formed, self-contained, and holds the figures."""

import base64
import re
import struct
import xml.etree.ElementTree as ElementTree
import zlib
from html.parser import HTMLParser

import numpy as np
import pytest

import rankconv
from rankconv import layers as L
from rankconv.explanation import explain
from rankconv.explanation_html import png, render_html, write_html

VOID = {"meta", "br", "img", "input", "link", "hr", "wbr", "source"}


class _Checker(HTMLParser):
    """Tags balance (SVG's self-closed elements included), and nothing points outside the page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.tags, self.figures = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        for key in ("src", "href", "xlink:href", "action"):
            value = attrs.get(key)
            if value is not None and not value.startswith(("data:image/png;base64,", "#")):
                self.errors.append(f"<{tag} {key}={value[:40]!r}> points outside the page")
        if tag == "figure":
            self.figures.append((attrs.get("class"), attrs.get("data-layer")))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)
        for key in ("href",):
            value = dict(attrs).get(key)
            if value is not None and not value.startswith(("data:image/png;base64,", "#")):
                self.errors.append(f"<{tag} href> points outside the page")

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
            return
        self.stack.pop()


def check_page(page: str) -> _Checker:
    assert page.startswith("<!DOCTYPE html>")
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert not checker.errors, checker.errors[:5]
    assert not checker.stack, f"unclosed: {checker.stack}"
    assert "script" not in checker.tags and "<script" not in page.lower()
    assert not re.search(r"(?:src|href)=\"https?:", page) and "@import" not in page
    # every figure is well-formed XML on its own
    svgs = re.findall(r"<svg\b.*?</svg>", page, flags=re.S)
    assert svgs
    for svg in svgs:
        ElementTree.fromstring(svg)
    for url in re.findall(r'href="data:image/png;base64,([^"]+)"', page):
        _check_png(base64.b64decode(url))
    return checker


def _check_png(data: bytes):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    start = data.index(b"IDAT") + 4
    length = struct.unpack(">I", data[start - 8 : start - 4])[0]
    raw = zlib.decompress(data[start : start + length])
    assert len(raw) == height * (1 + 3 * width)


def test_png_by_hand_round_trips():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    data = png(rgb)
    _check_png(data)
    start = data.index(b"IDAT") + 4
    length = struct.unpack(">I", data[start - 8 : start - 4])[0]
    rows = np.frombuffer(zlib.decompress(data[start : start + length]), np.uint8).reshape(5, 1 + 21)
    assert (rows[:, 0] == 0).all() and np.array_equal(rows[:, 1:].reshape(5, 7, 3), rgb)


def test_the_seeds_pages():
    one = check_page(render_html(explain("Conv1D(64, 3)", (600, 300))))
    assert ("field wide", "conv1d") in one.figures
    page = render_html(explain("Conv2D(64, (3, 300))", (600, 300, 1)))
    two = check_page(page)
    assert ("field", "conv2d") in two.figures and "field-2d" in page and "3×300 / 1×1 / 0,0" in page
    assert "random initial weights" in page  # no kernels for layers nobody trained


def test_a_3d_stack_is_drawn_in_slices():
    page = render_html(explain(["Conv3D(2, 3, padding='same')", "MaxPooling3D(2)"], (6, 6, 6, 1)))
    checker = check_page(page)
    assert [layer for kind, layer in checker.figures if kind and kind.startswith("field")] == [
        "conv3d",
        "max_pooling3d",
    ]
    assert page.count('class="field-3d"') == 2


@pytest.fixture(scope="module")
def trained_files(tmp_path_factory):
    from rankconv.text import kim_cnn

    folder = tmp_path_factory.mktemp("pages")
    kim = folder / "kim.keras"
    kim_cnn(100, 2, embedding_dim=16, windows=(3, 5), filters=6, length=20, seed=0).save(kim)
    image = folder / "cnn.keras"
    rankconv.Sequential(
        [
            L.Input((12, 12, 3)),
            L.Conv2D(6, 3, activation="relu", name="first"),
            L.MaxPooling2D(2, name="pool"),
            L.Conv2D(4, 3, name="second"),
            L.Flatten(name="flatten"),
            L.Dense(3, name="classes"),
        ]
    ).save(image)
    return kim, image


def test_text_cnn_file_page(trained_files, tmp_path):
    kim, _ = trained_files
    path = tmp_path / "kim.html"
    write_html(path, explain(kim))
    page = path.read_text(encoding="utf-8")
    checker = check_page(page)
    fields = [layer for kind, layer in checker.figures if kind and kind.startswith("field")]
    kernels = [layer for kind, layer in checker.figures if kind == "kernels"]
    assert fields == ["ngram_3", "ngram_5"]
    assert kernels == ["ngram_3", "ngram_5"] and 'class="kernels-1d"' in page
    assert 'class="flow"' in page and page.count('class="node"') == len(explain(kim).layers)
    assert "taps × channels" in page


def test_image_cnn_file_page(trained_files):
    _, image = trained_files
    page = render_html(explain(image))
    checker = check_page(page)
    assert [layer for kind, layer in checker.figures if kind == "kernels"] == ["first", "second"]
    assert "colour picture of its 3 input channels" in page
    assert [layer for kind, layer in checker.figures if kind == "field"] == ["first", "pool", "second"]


def test_chosen_layer_and_position():
    explanation = explain(["Conv1D(2, 3, dilation_rate=2)", "Conv1D(2, 3, strides=2)"], (30, 4))
    page = render_html(explanation, layers=["conv1d_1"], position=(3,))
    checker = check_page(page)
    assert [layer for kind, layer in checker.figures if kind and kind.startswith("field")] == ["conv1d_1"]
    assert "output position (3,)" in page
    with pytest.raises(ValueError, match="outside"):
        render_html(explanation, layers=["conv1d_1"], position=(40,))
    with pytest.raises(ValueError, match="one per spatial axis"):
        render_html(explanation, layers=["conv1d_1"], position=(1, 1))
    with pytest.raises(ValueError, match="No layer named"):
        render_html(explanation, layers=["nothing"])
    flat = explain(["Conv1D(2, 3)", "GlobalMaxPooling1D()"], (30, 4))
    with pytest.raises(ValueError, match="no spatial output"):
        render_html(flat, layers=["global_max_pooling1d"])


def test_long_fields_are_drawn_as_strips():
    stack = [f"Conv1D(4, 2, padding='causal', dilation_rate={2**i})" for i in range(10)]
    page = render_html(explain(stack, (4000, 1)), layers=["conv1d_9"])
    check_page(page)
    figure = re.search(r'<figure class="field wide" data-layer="conv1d_9">.*?</figure>', page, flags=re.S).group(0)
    assert figure.count("<image") == 11 and "stroke-opacity" not in figure  # a strip per layer and input, no links
    assert "1024 / 1 / -1023" in figure and len(page) < 1_000_000
