"""Standalone mode: a folder of manifests, recompiled on change, never replaced by a broken one."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from modelyard_proxy.standalone import ManifestFolder
from modelyard_proxy.store import TableStore
from tests.harness import EXAMPLES


@pytest.fixture
def folder(tmp_path: Path) -> ManifestFolder:
    for path in EXAMPLES.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    return ManifestFolder(tmp_path, TableStore())


def touch_later(path: Path) -> None:
    """Make a change visible to the poller even on filesystems with coarse timestamps."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_first_load_serves_the_folder(folder: ManifestFolder) -> None:
    assert folder.reload() is not None
    assert folder.store.current is not None
    assert "claude-sonnet" in folder.store.current.routes
    assert folder.store.generation == 1
    assert not folder.changed()


def test_edit_is_picked_up_with_a_new_generation(folder: ManifestFolder) -> None:
    folder.reload()
    routes = folder.directory / "routes.yaml"
    routes.write_text(routes.read_text().replace("model: claude-sonnet\n", "model: claude-renamed\n"))
    touch_later(routes)
    assert folder.changed()
    folder.reload()
    assert folder.store.current is not None
    assert "claude-renamed" in folder.store.current.routes
    assert "claude-sonnet" not in folder.store.current.routes
    assert folder.store.generation == 2


def test_unchanged_content_keeps_the_generation(folder: ManifestFolder) -> None:
    folder.reload()
    routes = folder.directory / "routes.yaml"
    touch_later(routes)
    folder.reload()
    assert folder.store.generation == 1


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("kind: ModelRoute\n  bad: [indent\n", "routes-broken.yaml"),
        (
            "apiVersion: modelyard.io/v1alpha1\nkind: ModelRoute\nmetadata: {name: x}\nspec: {model: x, targets: []}\n",
            "InvalidSpec",
        ),
        (
            "apiVersion: modelyard.io/v1alpha1\nkind: ModelRoute\nmetadata: {name: y}\n"
            "spec: {model: y, targets: [{credentialRef: {name: nope}, model: m}]}\n",
            "ProviderCredential default/nope not found",
        ),
    ],
)
def test_bad_file_keeps_the_last_good_table_and_says_why(folder: ManifestFolder, content: str, reason: str) -> None:
    folder.reload()
    good = folder.store.current
    (folder.directory / "routes-broken.yaml").write_text(content)
    assert folder.reload() is None
    assert folder.store.current is good
    assert folder.store.last_error is not None
    assert reason in folder.store.last_error
    (folder.directory / "routes-broken.yaml").unlink()
    assert folder.reload() is not None
    assert folder.store.last_error is None


def test_rotated_provider_key_is_a_new_table(folder: ManifestFolder) -> None:
    folder.reload()
    before = folder.store.current
    assert before is not None
    creds = folder.directory / "simulator-credentials.yaml"
    creds.write_text(creds.read_text().replace("sk-ant-sim", "sk-ant-rotated"))
    folder.reload()
    after = folder.store.current
    assert after is not None
    assert after.table.sha256 != before.table.sha256
    key = after.routes["claude-sonnet"].targets.targets[0].credential.api_key
    assert key is not None
    assert key.get_secret_value() == "sk-ant-rotated"
