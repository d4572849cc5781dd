import hashlib
import json

import polars as pl
import pytest

from selfpref import SelfprefError
from selfpref.data.refs import read_dataset, split_ref
from selfpref.data.schema import SchemaError
from selfpref.data.store import DATA_FILE, BuildRecord, bump_minor, derived_record, write_dataset


def _record(**kw):
    return BuildRecord(name="demo", method="sao", models={"generator": "tiny"},
                       parameters={"temperature": 0.6}, seed=7, **kw)


def test_round_trip(tmp_path, rows):
    out = tmp_path / "demo"
    written = write_dataset(rows, out, _record())
    df, record = read_dataset(str(out))
    assert df.to_dicts() == pl.DataFrame(rows).to_dicts()
    assert record == written
    assert record.version == "0.1.0" and record.seed == 7 and record.parameters == {"temperature": 0.6}
    assert record.fingerprint == hashlib.sha256((out / DATA_FILE).read_bytes()).hexdigest()
    assert record.created_at and record.selfpref_version
    on_disk = json.loads((out / "selfpref.json").read_text())
    assert set(on_disk) >= {"name", "version", "fingerprint", "created_at", "selfpref_version",
                            "method", "models", "parameters", "seed", "parent", "funnel"}
    assert (out / "README.md").read_text().startswith("---\n")


def test_exception_midway_leaves_no_folder(tmp_path, rows):
    def broken_card(df, record, folder):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_dataset(rows, tmp_path / "new", _record(), card=broken_card)
    assert list(tmp_path.iterdir()) == []


def test_exception_midway_keeps_existing_folder(tmp_path, rows):
    out = tmp_path / "ds"
    first = write_dataset(rows, out, _record())
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def broken_card(df, record, folder):
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        write_dataset(rows[:2], out, _record(version="0.2.0"), card=broken_card)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]
    assert read_dataset(out)[1].fingerprint == first.fingerprint


def test_invalid_rows_are_refused_before_writing(tmp_path, rows):
    rows[0]["rejected"] = rows[0]["chosen"]
    with pytest.raises(SchemaError):
        write_dataset(rows, tmp_path / "bad", _record())
    assert not (tmp_path / "bad").exists()


def test_derived_record_bumps_minor_and_names_parent(tmp_path, rows):
    parent = write_dataset(rows, tmp_path / "p", _record(version="1.2.3"))
    child = derived_record(parent, "org/p")
    assert child.version == "1.3.0" and bump_minor("0.1.0") == "0.2.0"
    assert child.parent == {"id": "org/p", "version": "1.2.3", "fingerprint": parent.fingerprint}


def test_refs(tmp_path):
    assert split_ref("org/name@v1.2.0") == ("org/name", "v1.2.0")
    assert split_ref("org/name") == ("org/name", None)
    with pytest.raises(SelfprefError, match="has no selfpref.json"):
        read_dataset(str(tmp_path))
    with pytest.raises(SelfprefError, match="no such dataset folder"):
        read_dataset("./missing-folder")


def test_folders_and_files_follow_the_umask(tmp_path, rows):
    import os

    old = os.umask(0o022)
    try:
        out = tmp_path / "demo"
        write_dataset(rows, out, _record())
        assert (out.stat().st_mode & 0o777) == 0o755
        assert ((out / "selfpref.json").stat().st_mode & 0o777) == 0o644
        assert ((out / DATA_FILE).stat().st_mode & 0o777) == 0o644
        os.umask(0o077)
        private = tmp_path / "private"
        write_dataset(rows, private, _record())
        assert (private.stat().st_mode & 0o777) == 0o700
    finally:
        os.umask(old)


def test_write_never_replaces_what_selfpref_did_not_make(tmp_path, rows):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    with pytest.raises(SelfprefError, match="--overwrite"):
        write_dataset(rows, mine, _record())
    assert (mine / "keep.txt").read_text() == "mine"
    write_dataset(rows, tmp_path / "ds", _record())
    write_dataset(rows[:2], tmp_path / "ds", _record())  # a dataset folder is replaced (iterate, build)
    assert read_dataset(tmp_path / "ds")[0].height == 2
    (tmp_path / "empty").mkdir()
    write_dataset(rows, tmp_path / "empty", _record())  # an empty folder is fine


# --- data.atomic: the one writer every file and folder goes through ------------------------------

def _count_fsyncs(monkeypatch):
    import os

    from selfpref.data import atomic

    calls, real = [], os.fsync
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: calls.append(os.readlink(f"/proc/self/fd/{fd}"))
                        or real(fd))
    return calls


def test_a_write_that_raises_midway_leaves_no_partial_file(tmp_path):
    from selfpref.data.atomic import atomic_path, write_atomic

    target = tmp_path / "report.json"
    write_atomic(target, "the old, whole file\n")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(target) as tmp, open(tmp, "w") as fh:
            fh.write("the first half of the new fi")
            fh.flush()
            raise RuntimeError("disk full")
    assert target.read_text() == "the old, whole file\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temp file left behind
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "new.bin") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_file_write_fsyncs_the_file_then_its_folder(tmp_path, monkeypatch):
    import os

    from selfpref.data.atomic import write_atomic, write_json_atomic

    calls = _count_fsyncs(monkeypatch)
    write_atomic(tmp_path / "a.txt", "text")
    assert len(calls) == 2
    assert os.path.basename(calls[0]).startswith(".a.txt.") and calls[1] == str(tmp_path)
    write_json_atomic(tmp_path / "sub" / "b.json", {"x": 1})
    assert calls[-1] == str(tmp_path / "sub") and json.loads((tmp_path / "sub" / "b.json").read_text()) == {"x": 1}
    os.umask(old := os.umask(0o022))
    assert ((tmp_path / "a.txt").stat().st_mode & 0o777) == 0o666 & ~old  # not mkstemp's 0600


def test_a_dataset_folder_is_fsynced_before_it_is_renamed_into_place(tmp_path, rows, monkeypatch):
    calls = _count_fsyncs(monkeypatch)
    write_dataset(rows, tmp_path / "ds", _record())
    synced = {c.replace(str(tmp_path), "") for c in calls}
    names = {s.split("/", 2)[-1] for s in synced if s.startswith("/.ds.tmp-")}
    assert {DATA_FILE, "selfpref.json", "README.md", "data"} <= names  # every file, inside the temp
    assert calls[-1] == str(tmp_path)  # then the rename, then the parent's entry list
