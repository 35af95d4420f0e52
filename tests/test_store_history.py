"""The results store: history instead of silent replacement, read-only readers, and clear
errors for damaged, foreign, newer and older stores (no TensorFlow needed here)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import evalkit
from evalkit.cli import cli
from evalkit.inputs.data.dataset import Dataset
from evalkit.measure.base import MetricValue
from evalkit.store.results import (
    HISTORY_COLUMNS,
    RESULT_COLUMNS,
    SCHEMA_VERSION,
    Store,
    StoreDamaged,
    StoreError,
    move_aside,
)


def dataset(n: int, tag: str = "a") -> Dataset:
    ids = [f"s{i}" for i in range(n)]
    return Dataset(name="heldout", kind="heldout", root=Path("/data"), ids=ids,
                   inputs=np.zeros((n, 4, 4, 1), np.float32),
                   targets=np.zeros((n, 4, 4, 3), np.uint8),
                   content_hash=f"{tag}{n}".ljust(64, "0"), size=4)


def values(n: int, l1: float) -> list[MetricValue]:
    return [MetricValue("l1", l1, n, per_sample=np.full(n, l1)),
            MetricValue("fid", None, n, status="skipped", reason="weights missing",
                        flags={"retryable": True})]


def write(out: Path, ds: Dataset, l1: float, sig: str = '{"p": 1}', ckpt_hash: str = "c" * 64,
          only=None) -> str | None:
    with Store(out) as st:
        run = st.start_run("/run", [], 32, {})
        note = st.put_dataset(ds)
        st.put_checkpoint("ckpt-1", 1, ckpt_hash, "/run/ckpt-1", "ok")
        st.put_evaluation("ckpt-1", ds.name, ckpt_hash, ds.content_hash, run, "outputs/x",
                          values(len(ds), l1) if only is None else [MetricValue("l1", l1, len(ds))],
                          ds.ids, signature=sig, only=only)
        st.finish_run(run)
    return note


def test_changed_data_keeps_old_results_as_history(tmp_path):
    assert write(tmp_path, dataset(54), 0.2) is None
    note = write(tmp_path, dataset(4), 0.3)  # e.g. --limit 4 into the same OUT
    assert note and "54 -> 4 samples" in note and "history" in note and "--all" in note
    cur = evalkit.load_results(tmp_path)
    assert list(cur.columns) == RESULT_COLUMNS
    assert (cur.n == 4).all() and len(cur) == 2
    allr = Store(tmp_path, create=False).results(history=True)
    assert list(allr.columns) == RESULT_COLUMNS + HISTORY_COLUMNS
    old = allr[allr.current == 0]
    assert (old.n == 54).all() and set(old.metric) == {"l1", "fid"}
    assert old.set_index("metric").loc["l1", "value"] == pytest.approx(0.2)
    assert old.dataset_hash.iloc[0] == dataset(54).content_hash
    assert old.why.iloc[0].startswith("dataset changed")
    # back to the full set: current again, the --limit results are history too, nothing lost
    write(tmp_path, dataset(54), 0.2)
    allr = Store(tmp_path, create=False).results(history=True)
    assert sorted(allr[allr.current == 0].n.unique()) == [4, 54]
    assert (evalkit.load_results(tmp_path).n == 54).all()


def test_unchanged_key_replaces_in_place_and_changed_settings_archive(tmp_path):
    write(tmp_path, dataset(6), 0.2)
    write(tmp_path, dataset(6), 0.2)  # same key: no history
    st = Store(tmp_path, create=False)
    assert (st.results(history=True).current == 1).all()
    st.close()
    write(tmp_path, dataset(6), 0.25, sig='{"p": 2}', only=["l1"])  # settings of l1 changed
    with Store(tmp_path, create=False) as st:
        allr = st.results(history=True)
        ev = st.evaluation("ckpt-1", "heldout")
    cur = allr[allr.current == 1].set_index("metric")
    assert cur.loc["l1", "value"] == pytest.approx(0.25)
    assert cur.loc["fid", "status"] == "skipped"  # the family not recomputed is kept
    assert ev["signature"] == '{"p": 2}' and set(ev["retryable"]) == {"fid"}
    old = allr[allr.current == 0]
    assert len(old) == 2 and old.why.iloc[0] == "metric settings changed"
    with sqlite3.connect(tmp_path / "results.sqlite") as con:
        per_sample = con.execute("SELECT COUNT(*) FROM sample_metrics").fetchone()[0]
    assert per_sample == 0  # the recomputed l1 had no per-sample values: old ones dropped


def test_failed_checkpoint_moves_its_results_to_history(tmp_path):
    write(tmp_path, dataset(6), 0.2)
    with Store(tmp_path) as st:
        st.mark_checkpoint_failed("ckpt-1", 1, "d" * 64, "/run/ckpt-1", "truncated")
    with Store(tmp_path, create=False) as st:
        assert st.results().empty
        old = st.results(history=True)
    assert len(old) == 2 and old.why.iloc[0] == "checkpoint failed: truncated"


def test_results_all_cli(tmp_path):
    write(tmp_path, dataset(54), 0.2)
    write(tmp_path, dataset(4), 0.3)
    r = CliRunner().invoke(cli, ["results", str(tmp_path), "--all", "--format", "json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert sorted((row["current"], row["n"]) for row in rows if row["metric"] == "l1") == \
        [(0, 54), (1, 4)]
    r = CliRunner().invoke(cli, ["results", str(tmp_path), "--all"])
    assert r.exit_code == 0 and "current" in r.output and "dataset changed" in r.output
    r = CliRunner().invoke(cli, ["results", str(tmp_path)])
    assert "54" not in r.output.split("\n", 1)[1]  # the table shows current rows only


def test_reader_writes_nothing(tmp_path):
    write(tmp_path, dataset(6), 0.2)
    db = tmp_path / "results.sqlite"
    before = (db.read_bytes(), sorted(p.name for p in tmp_path.iterdir()))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.sqlite"]  # rollback mode
    r = CliRunner().invoke(cli, ["results", str(tmp_path)])
    assert r.exit_code == 0
    evalkit.load_results(tmp_path)
    assert (db.read_bytes(), sorted(p.name for p in tmp_path.iterdir())) == before


def cli_error(out: Path) -> tuple[int, str]:
    r = CliRunner().invoke(cli, ["results", str(out)])
    assert "Traceback" not in r.output
    return r.exit_code, r.output


def test_damaged_stores_exit_2_with_the_fix(tmp_path):
    write(tmp_path, dataset(200), 0.2)
    db = tmp_path / "results.sqlite"
    good = db.read_bytes()
    db.write_bytes(good[: len(good) // 2])  # truncated
    code, out = cli_error(tmp_path)
    assert code == 2 and "is damaged" in out and "move it aside" in out
    assert "--rebuild-store" in out
    with pytest.raises(StoreDamaged):
        evalkit.load_results(tmp_path)
    db.write_bytes(b"\x89garbage" * 500)  # garbage
    code, out = cli_error(tmp_path)
    assert code == 2 and "is damaged" in out and "not an SQLite database" in out
    with pytest.raises(StoreDamaged):
        Store(tmp_path)  # the writer refuses too (exit 2 in `evalkit run`)
    dest = move_aside(db)
    assert dest.exists() and not db.exists() and "damaged-" in dest.name


def test_foreign_empty_and_newer_stores(tmp_path):
    db = tmp_path / "results.sqlite"
    db.write_bytes(b"")
    code, out = cli_error(tmp_path)
    assert code == 2 and "empty (0 bytes)" in out
    db.unlink()
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE photos (id INTEGER)")
    code, out = cli_error(tmp_path)
    assert code == 2 and "not an evalkit store" in out and "photos" in out
    with pytest.raises(StoreError, match="other tables"):
        Store(tmp_path)
    db.unlink()
    sqlite3.connect(db).close()  # an empty SQLite database with a header
    with sqlite3.connect(db) as con:
        con.execute("PRAGMA user_version=1")
    code, out = cli_error(tmp_path)
    assert code == 2 and "no tables" in out
    db.unlink()
    write(tmp_path, dataset(4), 0.2)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE meta SET value=? WHERE key='schema_version'",
                    (str(SCHEMA_VERSION + 1),))
    code, out = cli_error(tmp_path)
    assert code == 2 and "newer evalkit" in out
    with pytest.raises(StoreError, match="newer evalkit"):
        Store(tmp_path)


def test_old_schema_is_refused_by_readers_and_upgraded_by_the_writer(tmp_path):
    write(tmp_path, dataset(4), 0.2)
    db = tmp_path / "results.sqlite"
    with sqlite3.connect(db) as con:  # make it a schema-1 store
        for table, column in (("checkpoints", "domain"), ("datasets", "domain"),
                              ("evaluations", "signature")):
            con.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        con.execute("DROP TABLE evaluation_history")
        con.execute("DROP TABLE metric_history")
        con.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    code, out = cli_error(tmp_path)
    assert code == 2 and "older evalkit" in out and "evalkit run" in out
    Store(tmp_path).close()  # the writer migrates
    df = evalkit.load_results(tmp_path)
    assert len(df) == 2 and (df.domain == "").all()
    with Store(tmp_path, create=False) as st:
        assert st.evaluation("ckpt-1", "heldout")["signature"] is None  # from before


def test_store_without_evaluations_says_so(tmp_path):
    Store(tmp_path).close()  # e.g. a run killed before its first evaluation finished
    r = CliRunner().invoke(cli, ["results", str(tmp_path)])
    assert r.exit_code == 0 and "no evaluations stored" in r.output
    assert "Empty DataFrame" not in r.output
