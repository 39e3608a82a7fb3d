"""The benchmark copy shipped in the repository: unpacked once, atomically, under a lock; read-only; reproducible
from its sources; every archive carries its README and licence; what is not shipped fails naming the fix."""

from __future__ import annotations

import importlib.util
import io
import json
import multiprocessing
import tarfile
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grm.benchmarks import bundled, load_benchmark
from tests.unit.test_benchmarks_evaluation import _app

REPO = Path(__file__).resolve().parents[2]


def _pack_module():
    spec = importlib.util.spec_from_file_location("benchdata_pack", REPO / "benchdata" / "pack.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_first_use_unpacks_every_archive_read_only_and_later_uses_reuse_it(tmp_path):
    root = bundled.bundled_root(cache=tmp_path)
    assert root.parent == tmp_path / "benchdata" and root.name == bundled.archive_digest(bundled.archives())
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == bundled.shipped()
    assert {"rewardbench", "realmistake", "judgebench", "rm-bench", "gsm8k"} == set(bundled.shipped())
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files and all(p.stat().st_mode & 0o222 == 0 for p in files)  # read-only: the name promises the content
    assert bundled.is_bundled(root) and not bundled.is_bundled(tmp_path)
    stamp = (root / "rewardbench").stat().st_mtime_ns
    assert bundled.bundled_root(cache=tmp_path) == root and (root / "rewardbench").stat().st_mtime_ns == stamp
    assert not list((tmp_path / "benchdata").glob(".tmp-*"))


def test_a_killed_unpack_leaves_no_half_copy_and_the_next_use_cleans_it(tmp_path):
    digest = bundled.archive_digest(bundled.archives())
    stale = tmp_path / "benchdata" / f".tmp-{digest}-killed"
    (stale / "rewardbench").mkdir(parents=True)  # what a SIGKILL mid-extraction leaves
    (stale / "rewardbench" / "rewardbench_filtered.jsonl").write_text('{"half": ')
    root = bundled.bundled_root(cache=tmp_path)
    assert not stale.exists() and root.name == digest
    assert len(load_benchmark("rewardbench", root, progress=False)) == 2985


def _unpack_in_child(cache: str) -> str:
    return str(bundled.bundled_root(cache=Path(cache)))


def test_concurrent_first_uses_unpack_once_into_one_folder(tmp_path):
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        roots = pool.map(_unpack_in_child, [str(tmp_path)] * 3)
    assert len(set(roots)) == 1
    assert [p.name for p in (tmp_path / "benchdata").iterdir() if not p.name.startswith(".")] == [Path(roots[0]).name]
    assert not list((tmp_path / "benchdata").glob(".tmp-*"))


def test_no_archives_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"benchdata/\*\.tar\.gz.*pip install -e \..*eval\.benchdata"):
        bundled.bundled_root(cache=tmp_path, archive_dir=tmp_path / "nothing")


def test_an_unwritable_cache_names_grm_cache_dir(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match="GRM_CACHE_DIR"):
        bundled.bundled_root(cache=blocker)


def test_an_archive_escaping_its_folder_is_refused_and_leaves_nothing(tmp_path):
    archives = tmp_path / "archives"
    archives.mkdir()
    with tarfile.open(archives / "evil.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("../outside.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(Exception, match="outside"):
        bundled.bundled_root(cache=tmp_path / "cache", archive_dir=archives)
    assert not (tmp_path / "cache" / "outside.txt").exists()
    assert [p.name for p in (tmp_path / "cache" / "benchdata").iterdir() if not p.name.endswith(".lock")] == []


def test_rmb_is_not_shipped_and_asking_for_it_names_why_and_the_fix(monkeypatch):
    monkeypatch.delenv("GRM_BENCHDATA", raising=False)
    with pytest.raises(FileNotFoundError) as info:
        load_benchmark("rmb", limit=2, progress=False)
    message = str(info.value)
    assert "rmb is not shipped" in message and "no licence" in message
    assert "GRM_BENCHDATA" in message and "docs/benchdata.md" in message


def test_every_archive_holds_its_readme_and_licence_as_committed_and_rebuilds_byte_identical(tmp_path):
    pack = _pack_module()
    root = bundled.bundled_root()
    assert sorted(pack.DATA) == bundled.shipped()
    for name in bundled.shipped():
        committed = sorted(p.name for p in (REPO / "benchdata" / name).iterdir())
        assert "README.md" in committed and any(n.startswith("LICENSE") for n in committed), name
        for doc in committed:  # the unpacked copy carries the committed README and licence unchanged
            assert (root / name / doc).read_bytes() == (REPO / "benchdata" / name / doc).read_bytes()
        pack.pack(name, root, tmp_path / f"{name}.tar.gz")  # the unpacked data is its own source
        shipped = (REPO / "benchdata" / f"{name}.tar.gz").read_bytes()
        assert (tmp_path / f"{name}.tar.gz").read_bytes() == shipped, f"{name}: rerun python benchdata/pack.py SRC"


def test_realmistake_stays_encrypted_in_the_shipped_copy():
    with zipfile.ZipFile(bundled.bundled_root() / "realmistake" / "data.zip") as zf:
        data = [i for i in zf.infolist() if i.filename.endswith(".jsonl")]
        assert data and all(i.flag_bits & 0x1 for i in data)  # bit 0: encrypted, as the authors ask
        with pytest.raises(RuntimeError, match="password required"):
            zf.read(data[0])


def test_grm_eval_without_benchdata_reads_the_shipped_copy(tmp_path, monkeypatch):
    monkeypatch.delenv("GRM_BENCHDATA", raising=False)
    monkeypatch.chdir(tmp_path)  # no ../shared beside it
    items = load_benchmark("realmistake", limit=4, progress=False)
    scores = tmp_path / "rm.jsonl"
    scores.write_text("".join(json.dumps({"id": it.id, "scores": [1.0]}) + "\n" for it in items))
    out = tmp_path / "report"
    args = ["eval", "-b", "realmistake", "--scores-file", str(scores), "--limit", "4", "--output", str(out)]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    params = json.loads((out / "params.json").read_text())
    assert bundled.is_bundled(Path(params["benchdata"]))
