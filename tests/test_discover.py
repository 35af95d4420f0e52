"""Checkpoint discovery: every checkpoint, ordered by step, named relative to the run."""

from __future__ import annotations

from pathlib import Path

from evalkit.inputs.checkpoints.discover import discover_checkpoints


def touch(p: Path, data: bytes = b"x") -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)


def ckpt(folder: Path, name: str, shards: int = 1, skip: set[int] = frozenset()) -> None:
    touch(folder / f"{name}.index")
    for i in range(shards):
        if i not in skip:
            touch(folder / f"{name}.data-{i:05d}-of-{shards:05d}")


def test_order_by_step_and_names_relative(tmp_path):
    ckpt(tmp_path, "ckpt-10")
    ckpt(tmp_path, "ckpt-2")
    ckpt(tmp_path / "run2", "ckpt-10")
    ckpt(tmp_path / "run2", "ckpt-1")
    names = [r.name for r in discover_checkpoints(tmp_path)]
    assert names == ["run2/ckpt-1", "ckpt-2", "ckpt-10", "run2/ckpt-10"]


def test_missing_shard_recorded(tmp_path):
    ckpt(tmp_path, "ckpt-1")
    touch(tmp_path / "ckpt-2.index")
    ckpt(tmp_path, "ckpt-3", shards=2, skip={1})
    refs = {r.name: r for r in discover_checkpoints(tmp_path)}
    assert refs["ckpt-1"].problem is None
    assert "ckpt-2.data-00000-of-00001 is missing" in refs["ckpt-2"].problem
    assert "ckpt-3.data-00001-of-00002" in refs["ckpt-3"].problem


def test_ignores_other_files_and_hidden_folders(tmp_path):
    ckpt(tmp_path, "ckpt-1")
    touch(tmp_path / "checkpoint")
    touch(tmp_path / "notes.index")            # no step number
    ckpt(tmp_path / ".trash", "ckpt-5")        # hidden folder
    touch(tmp_path / "ckpt-1.data-00000-of-00001.tmp")
    refs = discover_checkpoints(tmp_path)
    assert [r.name for r in refs] == ["ckpt-1"]
    assert [p.name for p in refs[0].files] == ["ckpt-1.index", "ckpt-1.data-00000-of-00001"]


def test_custom_prefix_and_hash_changes_with_content(tmp_path):
    touch(tmp_path / "gen-7.index", b"a")
    touch(tmp_path / "gen-7.data-00000-of-00001", b"b")
    (ref,) = discover_checkpoints(tmp_path)
    assert (ref.name, ref.step) == ("gen-7", 7)
    h1 = ref.content_hash()
    touch(tmp_path / "gen-7.data-00000-of-00001", b"c")
    assert ref.content_hash() != h1


def test_empty_folder(tmp_path):
    assert discover_checkpoints(tmp_path) == []


def test_output_folder_inside_the_run_is_excluded(tmp_path):
    ckpt(tmp_path, "ckpt-1")
    ckpt(tmp_path / "evalkit-out" / "deploy", "ckpt-1")  # an export written inside OUT
    assert [r.name for r in discover_checkpoints(tmp_path)] == ["ckpt-1", "evalkit-out/deploy/ckpt-1"]
    refs = discover_checkpoints(tmp_path, exclude=[tmp_path / "evalkit-out"])
    assert [r.name for r in refs] == ["ckpt-1"]
