"""Layer expressions such as `"Conv2D(32, 3, strides=2)"`, turned into layers safely.

An expression is one call of a rankconv layer class, by name (optionally written `layers.Conv1D`,
`keras.layers.Conv1D` or `rankconv.layers.Conv1D`), whose arguments are literals: numbers,
strings, tuples, lists, dicts, True/False/None. It is read with Python's `ast` and the arguments
with `ast.literal_eval`; nothing is evaluated, imported or looked up beyond the class name, so a
command line or a file cannot run code through it. Anything else is refused with an error that
names the offending part.
"""

from __future__ import annotations

import ast
import difflib

# Long enough for any layer's arguments; bounds the parser's work on hostile input.
MAX_EXPRESSION_LENGTH = 2000

_PREFIXES = ("", "layers.", "keras.layers.", "rankconv.layers.")
_NOT_LAYERS = {"Layer", "InputLayer", "BaseConv", "Pooling", "GlobalPooling", "ZeroPadding"}


def layer_classes() -> dict:
    """The class names an expression may call: rankconv's layers, Keras's aliases included."""
    from rankconv import layers
    from rankconv.layers.layer import Layer

    classes = {}
    for name in layers.__all__:
        value = getattr(layers, name, None)
        if isinstance(value, type) and issubclass(value, Layer) and name not in _NOT_LAYERS:
            classes[name] = value
    return classes


def _dotted(node) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None


def _literal(node, where: str):
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        shown = ast.unparse(node)
        hint = ""
        if isinstance(node, ast.Name):
            hint = f" (a name is not a literal; if you mean the string, quote it: '{node.id}')"
        raise ValueError(
            f"{where} must be a literal (a number, string, tuple, list, dict, True, False or None); received "
            f"`{shown}`{hint}."
        ) from None


def parse_layer(text: str):
    """The layer that `text` (e.g. `"Conv1D(64, 3, activation='relu')"`) describes, unbuilt."""
    if not isinstance(text, str):
        raise TypeError(f"A layer expression must be a string such as 'Conv1D(64, 3)'; received {type(text).__name__}.")
    source = text.strip()
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise ValueError(
            f"A layer expression may have at most {MAX_EXPRESSION_LENGTH} characters; received {len(source)}."
        )
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as error:
        raise ValueError(f"The layer expression {text!r} is not a call such as 'Conv1D(64, 3)': {error.msg}.") from None
    except (MemoryError, RecursionError):
        raise ValueError(f"The layer expression {text[:60]!r}… is nested too deeply.") from None
    call = tree.body
    if not isinstance(call, ast.Call):
        raise ValueError(
            f"A layer expression must be a call of a rankconv layer class, such as 'Conv1D(64, 3)'; received {text!r}."
        )
    classes = layer_classes()
    dotted = _dotted(call.func)
    name = None
    if dotted is not None:
        for prefix in _PREFIXES:
            if dotted.startswith(prefix) and dotted[len(prefix) :] in classes:
                name = dotted[len(prefix) :]
                break
    if name is None:
        shown = dotted if dotted is not None else ast.unparse(call.func)
        close = difflib.get_close_matches(shown.rsplit(".", 1)[-1], list(classes), n=3)
        suggestion = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"In the layer expression {text!r}, `{shown}` is not a rankconv layer class (such as Conv1D, Conv2D, "
            f"MaxPooling2D, Dense, Embedding).{suggestion}"
        )
    arguments = []
    for position, node in enumerate(call.args):
        if isinstance(node, ast.Starred):
            raise ValueError(f"In the layer expression {text!r}, `*` arguments are not allowed.")
        arguments.append(_literal(node, f"In the layer expression {text!r}, argument {position + 1}"))
    keywords = {}
    for keyword in call.keywords:
        if keyword.arg is None:
            raise ValueError(f"In the layer expression {text!r}, `**` arguments are not allowed.")
        keywords[keyword.arg] = _literal(keyword.value, f"In the layer expression {text!r}, `{keyword.arg}`")
    try:
        return classes[name](*arguments, **keywords)
    except TypeError as error:
        raise TypeError(f"The layer expression {text!r}: {error}") from None
