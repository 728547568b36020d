"""tools.files: atomic writes (group-readable per umask), jsonl reading, file:// paths, parquet values."""

from __future__ import annotations

import json
import math
import os
import stat

import pytest

from tools.files import (
    atomic_write,
    atomic_write_bytes,
    atomic_write_jsonl,
    atomic_write_text,
    parquet_value,
    read_jsonl,
    strip_file_uri,
)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_writes_content_and_mode(tmp_path, umask_022):
    text = atomic_write_text(tmp_path / "a" / "t.txt", "héllo\n")
    data = atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    rows = atomic_write_jsonl(tmp_path / "r.jsonl", [{"q": "é"}, [1, 2]])
    fn = atomic_write(tmp_path / "f.txt", lambda tmp: tmp.write_text("x"))
    assert text.read_text(encoding="utf-8") == "héllo\n"
    assert data.read_bytes() == b"\x00\x01"
    assert rows.read_text(encoding="utf-8") == '{"q": "é"}\n[1, 2]\n'
    assert fn.read_text() == "x"
    for path in (text, data, rows, fn):
        assert _mode(path) == 0o644, path  # never mkstemp's 0600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b.bin", "f.txt", "r.jsonl"]  # no temp left


def test_atomic_write_follows_a_group_writable_umask(tmp_path):
    old = os.umask(0o002)
    try:
        path = atomic_write_text(tmp_path / "g.txt", "x")
    finally:
        os.umask(old)
    assert _mode(path) == 0o664


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def boom(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_read_jsonl_lines_bom_and_blank_lines(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n\n  \n[2]\n"s"\n')
    assert list(read_jsonl(path)) == [(1, {"a": 1}), (4, [2]), (5, "s")]


def test_read_jsonl_bad_json_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": 1}\n{"a": \n')
    reader = read_jsonl(path)
    assert next(reader) == (1, {"a": 1})
    with pytest.raises(ValueError) as info:
        next(reader)
    assert str(info.value).startswith(f"{path}:2: not valid JSON")


def test_read_jsonl_not_utf8_names_file_line_and_byte(tmp_path):
    path = tmp_path / "latin.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": "\xe9"}\n')
    with pytest.raises(ValueError) as info:
        list(read_jsonl(path))
    assert str(info.value) == f"{path}:2: not UTF-8 text: byte 0xe9 at column 8"


def test_strip_file_uri():
    assert strip_file_uri("file:///data/v.mp4") == "/data/v.mp4"
    assert strip_file_uri("/data/v.mp4") == "/data/v.mp4"
    assert strip_file_uri("rel/v.mp4") == "rel/v.mp4"
    assert strip_file_uri("http://x/v.mp4") == "http://x/v.mp4"
    from pathlib import Path

    assert strip_file_uri(Path("/a/b")) == "/a/b"


def test_parquet_value():
    np = pytest.importorskip("numpy")
    assert parquet_value(None) is None
    assert parquet_value(float("nan"), 3.0) == 3.0
    assert parquet_value(np.float64("nan"), "d") == "d"
    assert parquet_value(0.0, 1.0) == 0.0
    assert parquet_value("", "d") == ""
    assert parquet_value([1], None) == [1]
    assert math.isinf(parquet_value(float("inf")))
    assert json.dumps(parquet_value(None, {})) == "{}"


def test_atomic_write_dir_replaces_the_folder(tmp_path, umask_022):
    from tools.files import atomic_write_dir

    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    seen = []

    def fill(tmp):
        seen.append(tmp.name)
        (tmp / "new.txt").write_text("new")

    assert atomic_write_dir(target, fill) == target
    assert seen[0].startswith(".model.") and seen[0].endswith(".tmp")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert _mode(target) == 0o755
    assert [p.name for p in tmp_path.iterdir()] == ["model"]

    def boom(tmp):
        (tmp / "half.txt").write_text("x")
        raise OSError("no space")

    with pytest.raises(OSError):
        atomic_write_dir(target, boom)
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_read_jsonl_keep_going_yields_errors_and_reads_on(tmp_path):
    from tools.files import JsonlLineError

    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b'{"a": 1}\n[1, 2\n\xff\n{"b": 2}\n')
    out = list(read_jsonl(path, keep_going=True))
    assert [n for n, _ in out] == [1, 2, 3, 4]
    assert out[0][1] == {"a": 1} and out[3][1] == {"b": 2}
    assert isinstance(out[1][1], JsonlLineError) and out[1][1].kind == "json" and out[1][1].lineno == 2
    assert str(out[1][1]).startswith(f"{path}:2: not valid JSON")
    assert out[2][1].kind == "utf8" and out[2][1].reason == "not UTF-8 text: byte 0xff at column 1"


def test_read_json_document_and_errors(tmp_path):
    from tools.files import read_json

    good = tmp_path / "a.json"
    good.write_bytes(b'\xef\xbb\xbf{"k": [1, 2]}')
    assert read_json(good) == {"k": [1, 2]}
    bad = tmp_path / "b.json"
    bad.write_text('{\n  "k": ,\n}')
    with pytest.raises(ValueError) as info:
        read_json(bad)
    assert str(info.value).startswith(f"{bad}:2: not valid JSON (")
    latin = tmp_path / "c.json"
    latin.write_bytes(b'{"k": "\xe9"}')
    with pytest.raises(ValueError, match=r"c.json: not UTF-8 text \(byte 7\)"):
        read_json(latin)
