"""Atomic writes: to a temporary sibling first, then an atomic rename, so readers never see half a file."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import uuid
from pathlib import Path

import fsspec
import polars as pl


def _tmp_sibling(path: str) -> str:
    head, _, tail = path.rpartition("/")
    return f"{head}/.{tail}.{uuid.uuid4().hex}.tmp"


def write_bytes_atomic(uri: str | Path, payload: bytes) -> None:
    uri = str(uri)
    if "://" not in uri:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
        tmp = _tmp_sibling(uri)
        try:
            with open(tmp, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, uri)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return
    # Object stores have no rename; a single PUT is atomic for readers, which is the property we need.
    with fsspec.open(uri, "wb") as handle:
        handle.write(payload)


def read_bytes(uri: str | Path) -> bytes:
    """The whole file at a path or fsspec URL; ``FileNotFoundError`` when it does not exist."""
    with fsspec.open(str(uri), "rb") as handle:
        return handle.read()


def modified_times(folder: str | Path, suffix: str) -> dict[str, float]:
    """The files directly in a folder or under an fsspec URL prefix whose names end in ``suffix``: name -> when it
    was last written (epoch seconds); empty when the folder does not exist."""
    fs, root = fsspec.core.url_to_fs(str(folder))
    try:
        entries = fs.ls(root, detail=True, refresh=True)  # an object store's listing is cached otherwise
    except FileNotFoundError:
        return {}
    times: dict[str, float] = {}
    for entry in entries:
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        if entry.get("type") != "file" or not name.endswith(suffix):
            continue
        # A local file system reports ``mtime``; an object store its objects' ``LastModified``.
        modified = entry.get("mtime", entry.get("LastModified"))
        times[name] = modified.timestamp() if hasattr(modified, "timestamp") else float(modified)
    return times


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True)
    return buffer.getvalue()


def sha256_hex(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def prune_oldest_dirs(root: Path, pattern: str, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest directories under ``root`` whose names fully match ``pattern``.

    Returns what was deleted. Anything else under ``root`` is never touched, and a directory that vanishes meanwhile
    (another process pruning) is skipped.
    """
    matcher = re.compile(pattern)
    candidates = []
    for path in root.iterdir() if root.is_dir() else []:
        try:
            if path.is_dir() and matcher.fullmatch(path.name):
                candidates.append((path.stat().st_mtime, path))
        except FileNotFoundError:
            continue
    candidates.sort(reverse=True)
    removed = [path for _, path in candidates[keep:]]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed
