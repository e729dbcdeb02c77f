"""The atomic writer: modes, what it refuses to replace, symlinks, undecodable names."""

from __future__ import annotations

import os
import stat

import pytest

from asdxai._atomic import atomic_path, atomic_write_text, check_output_file
from asdxai.errors import ConfigError


@pytest.fixture
def umask():
    """Set a umask for one test and restore the old one afterwards."""
    old = os.umask(0o022)
    yield lambda value: os.umask(value)
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_new_file_honours_the_umask(tmp_path, umask, mask):
    umask(mask)
    path = atomic_write_text(tmp_path / "out.txt", "x")
    assert _mode(path) == 0o666 & ~mask


def test_rewrite_keeps_the_existing_mode(tmp_path, umask):
    umask(0o077)
    path = tmp_path / "out.txt"
    path.write_text("old")
    os.chmod(path, 0o644)
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and _mode(path) == 0o644
    os.chmod(path, 0o600)
    atomic_write_text(path, "newer")
    assert _mode(path) == 0o600


def _refused(path, kind):
    with pytest.raises(ConfigError, match=f"{path}: is {kind}; refusing to replace") as info:
        atomic_write_text(path, "x")
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=kind):
        check_output_file(path)


def test_refuses_to_replace_a_directory_or_fifo(tmp_path):
    (tmp_path / "d").mkdir()
    _refused(tmp_path / "d", "a directory")
    assert (tmp_path / "d").is_dir()
    os.mkfifo(tmp_path / "f")
    _refused(tmp_path / "f", "a fifo")
    assert stat.S_ISFIFO(os.lstat(tmp_path / "f").st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "f"]  # no temporary file left


def test_refuses_to_replace_a_device_node(tmp_path):
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs root")
    _refused(node, "a character device")
    assert stat.S_ISCHR(os.lstat(node).st_mode)
    link = tmp_path / "link.pt"
    link.symlink_to(node)  # a link to a device is refused too, not replaced by a file
    _refused(link, "a character device")
    assert link.is_symlink()


def test_writes_through_a_symlink_to_its_target(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "model.pt"
    target.write_text("old")
    os.chmod(target, 0o640)
    link = tmp_path / "model.pt"
    link.symlink_to(target)
    with atomic_path(link) as tmp:
        assert tmp.parent == target.parent  # the rename stays on the target's file system
        tmp.write_text("new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new" and _mode(target) == 0o640
    assert check_output_file(link) == target
    dangling = tmp_path / "dangling.txt"  # followed only to an existing file (issue 27)
    for where in (tmp_path / "real" / "later.txt", tmp_path / "missing" / "later.txt"):
        dangling.unlink(missing_ok=True)
        dangling.symlink_to(where)
        with pytest.raises(ConfigError, match="does not exist"):
            atomic_write_text(dangling, "created")
        assert dangling.is_symlink() and not where.exists()
    assert not (tmp_path / "missing").exists()
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["model.pt"]


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_text_with_an_undecodable_file_name_is_written(tmp_path):
    name = os.fsdecode(b"section_00_\xff.wav")  # how Python spells a non-UTF-8 byte in a name
    path = atomic_write_text(tmp_path / "list.csv", f"path\n{name}\n\u00e9\ud800\n")
    assert path.read_text(encoding="utf-8") == "path\nsection_00_\\xff.wav\n\u00e9\\ud800\n"
