"""``zhiku watch`` and folder sync: add, change, rename, delete, debounce, an unmounted
share, and a watcher killed with SIGKILL that catches up when restarted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.filegen import make_docx
from zhiku.engine import Zhiku
from zhiku.ingest import FileResult
from zhiku.sources.folder import FolderUnavailable, sync_folder
from zhiku.sources.watch import Watcher


def _paths(zk: Zhiku, kb: str = "w") -> set[str]:
    return {d.path for d in zk.store.list_documents(kb)}


def _wait(cond: Callable[[], bool], timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def test_sync_folder_add_change_delete(engine: Zhiku, tmp_path: Path) -> None:
    root = tmp_path / "share"
    (root / "sub").mkdir(parents=True)
    a = root / "a.md"
    a.write_text("# 請假\n\n病假全年不得超過三十日。\n", "utf-8")
    b = root / "sub" / "b.txt"
    b.write_text("出差住宿每晚上限二千六百元。", "utf-8")
    r1 = sync_folder(engine, "w", root, meta={"dept": "hr"})
    assert r1.count("added") == 2
    assert engine.store.get_document("w", str(a.resolve())).meta["dept"] == "hr"  # type: ignore[union-attr]
    a.write_text("# 請假\n\n病假全年不得超過三十日，婚假八日。\n", "utf-8")
    b.unlink()
    r2 = sync_folder(engine, "w", root)
    assert r2.count("updated") == 1 and r2.count("removed") == 1
    assert _paths(engine) == {str(a.resolve())}
    assert engine.search("婚假幾日", "w", k=1)[0].path == str(a.resolve())


def test_unmounted_share_removes_nothing(engine: Zhiku, tmp_path: Path) -> None:
    root = tmp_path / "nas"
    root.mkdir()
    (root / "a.txt").write_text("資安政策：密碼至少十二字元。", "utf-8")
    sync_folder(engine, "w", root)
    (root / "a.txt").unlink()  # an empty mount point looks like this
    with pytest.raises(FolderUnavailable):
        sync_folder(engine, "w", root)
    os.rmdir(root)
    with pytest.raises(FolderUnavailable):
        sync_folder(engine, "w", root)
    assert len(_paths(engine)) == 1


@pytest.fixture
def watcher(engine: Zhiku, tmp_path: Path) -> Iterator[tuple[Watcher, Path, list[FileResult]]]:
    root = tmp_path / "watched"
    root.mkdir()
    (root / "old.txt").write_text("舊文件：年終獎金於二月發放。", "utf-8")
    events: list[FileResult] = []
    w = Watcher(engine, "w", root, debounce_s=0.5, on_file=events.append)
    t = threading.Thread(target=w.run, daemon=True)
    t.start()
    assert w.ready.wait(30)
    yield w, root, events
    w.stop()
    t.join(10)
    assert not t.is_alive()


def test_watch_add_change_rename_delete(
    engine: Zhiku, watcher: tuple[Watcher, Path, list[FileResult]]
) -> None:
    w, root, events = watcher
    old = str((root / "old.txt").resolve())
    assert _paths(engine) == {old}  # the start-up reconciliation
    # Add a DOCX (a real one, written by python-docx) in a new sub-folder.
    (root / "hr").mkdir()
    make_docx(
        root / "hr" / "leave.docx",
        [("heading", 1, "請假辦法"), ("para", "婚假八日，喪假依親等給假。")],
    )
    new = str((root / "hr" / "leave.docx").resolve())
    _wait(lambda: new in _paths(engine))
    assert engine.search("婚假", "w", k=1)[0].path == new
    # Change.
    (root / "old.txt").write_text("舊文件：年終獎金改於一月發放。", "utf-8")
    _wait(lambda: any(e.status == "updated" and e.path == old for e in events))
    assert "一月" in engine.search("年終獎金", "w", k=1)[0].text
    # Rename a file, then a whole folder.
    (root / "old.txt").rename(root / "bonus.txt")
    bonus = str((root / "bonus.txt").resolve())
    _wait(lambda: _paths(engine) == {bonus, new})
    (root / "hr").rename(root / "people")
    moved = str((root / "people" / "leave.docx").resolve())
    _wait(lambda: _paths(engine) == {bonus, moved})
    # Delete; hidden and Office lock files are ignored.
    (root / "~$temp.docx").write_bytes(b"lock")
    (root / "bonus.txt").unlink()
    _wait(lambda: _paths(engine) == {moved})
    assert not any("~$" in e.path for e in events)


def test_watch_debounces_a_file_written_in_pieces(
    engine: Zhiku, watcher: tuple[Watcher, Path, list[FileResult]]
) -> None:
    w, root, events = watcher
    f = root / "minutes.txt"
    with f.open("w", encoding="utf-8") as fh:
        for i in range(6):
            fh.write(f"第{i}段：會議紀錄內容。")
            fh.flush()
            time.sleep(0.15)
    path = str(f.resolve())
    _wait(lambda: path in _paths(engine))
    time.sleep(1.0)
    stored = [e for e in events if e.path == path and e.status in ("added", "updated")]
    assert len(stored) == 1  # read once, complete
    assert "第5段" in engine.search("第5段 會議紀錄", "w", k=1)[0].text


def test_watch_cli_survives_sigkill(tmp_path: Path) -> None:
    home = tmp_path / "home"
    root = tmp_path / "share"
    root.mkdir()
    (root / "a.txt").write_text("採購：十萬元以上需三家報價。", "utf-8")
    env = {**os.environ, "ZHIKU_HOME": str(home), "PYTHONPATH": str(Path.cwd())}
    cmd = [sys.executable, "-m", "zhiku", "watch", str(root), "--kb", "w", "--debounce", "0.3"]

    def docs() -> set[str]:
        out = subprocess.run(
            [sys.executable, "-m", "zhiku", "docs", "--kb", "w", "--json"],
            env=env,
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            return set()
        return {d["path"] for d in json.loads(out.stdout)["documents"]}

    p = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        _wait(lambda: str((root / "a.txt").resolve()) in docs(), 60)
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        # While nobody watches: a file is added, another deleted.
        (root / "b.txt").write_text("差旅：高鐵可搭標準車廂。", "utf-8")
        (root / "a.txt").unlink()
        p = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
        _wait(lambda: docs() == {str((root / "b.txt").resolve())}, 60)
        p.send_signal(signal.SIGTERM)
        _, stderr = p.communicate(timeout=30)
        assert p.returncode == 0, stderr
        assert "已停止監看" in stderr
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_watch_keeps_documents_when_the_share_goes_away(engine: Zhiku, tmp_path: Path) -> None:
    root = tmp_path / "nas"
    root.mkdir()
    for name in ("a.txt", "b.txt"):
        (root / name).write_text(f"{name}：資料保存年限為五年。", "utf-8")
    events: list[FileResult] = []
    w = Watcher(engine, "w", root, debounce_s=0.3, on_file=events.append)
    t = threading.Thread(target=w.run, daemon=True)
    t.start()
    assert w.ready.wait(30) and w.error is None
    for name in ("a.txt", "b.txt"):  # everything vanishes at once, as on an unmount
        (root / name).unlink()
    time.sleep(2.0)
    assert len(_paths(engine)) == 2  # removals postponed, nothing lost
    w.stop()
    t.join(10)
    # Restarting on the empty folder refuses to start rather than deleting everything.
    w2 = Watcher(engine, "w", root, debounce_s=0.3)
    w2.run()
    assert isinstance(w2.error, FolderUnavailable) and len(_paths(engine)) == 2
