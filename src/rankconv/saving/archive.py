"""Reading untrusted archives and JSON safely, and writing files atomically."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
import zlib

# Limits on what a model file may make the loader read.
MAX_CONFIG_BYTES = 64 * 2**20
MAX_WEIGHTS_BYTES = 8 * 2**30
MAX_COMPRESSION_RATIO = 200
MAX_JSON_DEPTH = 64
ALLOWED_MEMBERS = ("config.json", "metadata.json", "model.weights.h5")


class ModelFileError(ValueError):
    """A model file that is not a valid (or not a safe) Keras file."""


def read_members(path, wanted=("config.json", "model.weights.h5"), optional=()) -> dict[str, bytes]:
    """The named members of a zip archive (`optional` ones if present), after checking every
    member's name and declared size."""
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path} is not a .keras model file: it is not a zip archive (or it is truncated).")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ModelFileError(f"{path} is not a readable .keras archive: {error}.") from None
    with archive:
        members = {}
        for info in archive.infolist():
            name = info.filename
            if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/") or ":" in name:
                raise ModelFileError(f"{path} holds a member with an unsafe path: {name!r}.")
            if name not in ALLOWED_MEMBERS and not name.startswith("assets/"):
                raise ModelFileError(
                    f"{path} holds an unexpected member {name!r}; a .keras file holds {ALLOWED_MEMBERS}."
                )
            limit = MAX_CONFIG_BYTES if name.endswith(".json") else MAX_WEIGHTS_BYTES
            if info.file_size > limit:
                raise ModelFileError(
                    f"{path}: member {name!r} declares {info.file_size:,} bytes, over the limit of {limit:,}."
                )
            if info.compress_type != zipfile.ZIP_STORED and info.file_size > MAX_COMPRESSION_RATIO * max(
                info.compress_size, 1
            ):
                raise ModelFileError(
                    f"{path}: member {name!r} would inflate {info.file_size / max(info.compress_size, 1):.0f}-fold "
                    f"(limit {MAX_COMPRESSION_RATIO}); refusing to read it."
                )
            members[name] = info
        missing = [name for name in wanted if name not in members]
        if missing:
            raise ModelFileError(f"{path} is not a complete .keras file: it lacks {missing}.")
        result = {}
        for name in (*wanted, *(n for n in optional if n in members)):
            info = members[name]
            try:
                with archive.open(info) as handle:
                    data = handle.read(info.file_size + 1)
            except (
                zipfile.BadZipFile,
                OSError,
                EOFError,
                zipfile.LargeZipFile,
                RuntimeError,
                NotImplementedError,
                zlib.error,
            ) as error:
                raise ModelFileError(
                    f"{path}: member {name!r} cannot be read ({error}); the file may be truncated."
                ) from None
            if len(data) != info.file_size:
                raise ModelFileError(f"{path}: member {name!r} does not match its declared size; the file is damaged.")
            result[name] = data
        return result


def _json_depth_ok(text: str) -> bool:
    """Whether brackets nest at most MAX_JSON_DEPTH deep (checked before parsing, which would recurse)."""
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return False
        elif char in "]}":
            depth -= 1
    return True


def parse_json(data: bytes, where: str):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelFileError(f"{where} is not UTF-8 JSON.") from None
    if not _json_depth_ok(text):
        raise ModelFileError(f"{where} nests deeper than {MAX_JSON_DEPTH} levels; refusing to parse it.")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise ModelFileError(f"{where} is not valid JSON: {error}.") from None


@contextlib.contextmanager
def atomic_write(path, overwrite=True):
    """Yield a temporary path beside `path`; on success flush it to disk (fsync), rename it over
    `path` and make the rename durable (fsync of the folder); else remove it.

    An interrupted save never leaves a half-written file at `path`, nor touches an existing one: a
    process killed at any point (or a machine losing power after the save returned) leaves the
    previous file or the new one, never a mix (at worst a stray `.rankconv-*.partial` beside it).
    """
    path = os.fspath(path)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists and overwrite=False.")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"Cannot save to {path}: the folder {directory} does not exist.")
    handle, temporary = tempfile.mkstemp(prefix=".rankconv-", suffix=".partial", dir=directory)
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)  # an ordinary file's mode, not mkstemp's owner-only one
    try:
        yield temporary
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise
    _fsync_folder(directory)


def _fsync_folder(folder) -> None:
    """Make a rename in `folder` durable, where the platform has folder descriptors (not Windows)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
