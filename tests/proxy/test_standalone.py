"""Standalone mode: a folder of manifests, recompiled on change, never replaced by a broken one."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from modelyard_proxy.table.standalone import EMPTY_MARKER, ManifestFolder
from modelyard_proxy.table.store import TableStore
from tests.cli.test_cli import free_port, get_json, modelyard, process, wait_for
from tests.harness import DEMO_KEY, EXAMPLES


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
    assert not folder.changed()  # seen once: compiled once it stays so for one more check
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


def test_emptied_folder_keeps_the_last_good_table_and_says_why(folder: ManifestFolder) -> None:
    folder.reload()
    good = folder.store.current
    files = {path: path.read_bytes() for path in folder.directory.iterdir()}
    for path in files:
        path.unlink()
    assert folder.reload() is None
    assert folder.store.current is good
    assert f"would drop every route served (6); add a file named {EMPTY_MARKER}" in str(folder.store.last_error)
    # Filled again file by file: no step in between replaces the served table, and the end is that table again.
    for path, content in files.items():
        path.write_bytes(content)
        folder.reload()
        assert folder.store.current is good
    assert folder.store.last_error is None
    assert folder.store.generation == 1


def test_dropping_every_api_key_keeps_the_last_good_table(folder: ManifestFolder) -> None:
    folder.reload()
    good = folder.store.current
    (folder.directory / "gateway-keys.yaml").unlink()
    assert folder.reload() is None
    assert folder.store.current is good
    assert "would drop every gateway API key served (1)" in str(folder.store.last_error)


def test_the_empty_marker_lets_the_folder_drop_every_route_and_key(folder: ManifestFolder) -> None:
    folder.reload()
    for path in folder.directory.iterdir():
        path.unlink()
    (folder.directory / EMPTY_MARKER).touch()
    assert folder.reload() is not None
    assert folder.store.current is not None
    assert (len(folder.store.current.table.routes), folder.store.generation) == (0, 2)
    assert folder.store.last_error is None


def test_an_empty_folder_is_not_served_at_first_unless_marked(tmp_path: Path) -> None:
    folder = ManifestFolder(tmp_path, TableStore())
    assert folder.reload() is None
    assert folder.store.current is None
    assert f"holds no ModelRoute; add a file named {EMPTY_MARKER}" in str(folder.store.last_error)
    (tmp_path / EMPTY_MARKER).touch()
    assert not folder.changed()
    assert folder.changed()  # the marker counts as a change of the folder
    assert folder.reload() is not None
    assert folder.store.generation == 1


def test_a_file_still_being_written_is_compiled_once_it_settles(folder: ManifestFolder) -> None:
    """A prefix of a file can be valid on its own (here, the first two of six routes): the poller compiles
    nothing while the folder keeps changing between its checks."""
    folder.reload()
    routes = folder.directory / "routes.yaml"
    whole = routes.read_text()
    documents = whole.split("\n---\n")
    routes.write_text("\n---\n".join(documents[:2]))
    assert not folder.changed()
    routes.write_text(whole.replace("model: claude-sonnet\n", "model: claude-renamed\n"))
    touch_later(routes)
    assert not folder.changed()
    assert folder.changed()
    folder.reload()
    assert folder.store.current is not None
    assert len(folder.store.current.table.routes) == 6
    assert "claude-renamed" in folder.store.current.routes


def swap_configmap(directory: Path, version: str, files: dict[str, bytes]) -> None:
    """Update ``directory`` as the kubelet updates a mounted ConfigMap: the new files in a hidden folder, then
    ``..data`` pointed at it in one rename, with a top-level symlink through ``..data`` per key."""
    (directory / version).mkdir()
    for name, content in files.items():
        (directory / version / name).write_bytes(content)
    (directory / "..data_tmp").symlink_to(version)
    (directory / "..data_tmp").rename(directory / "..data")
    for link in directory.iterdir():
        if link.is_symlink() and not link.name.startswith(".") and link.name not in files:
            link.unlink()
    for name in files:
        if not (directory / name).is_symlink():
            (directory / name).symlink_to(Path("..data") / name)


def test_configmap_swapped_to_no_keys_keeps_the_table_until_it_holds_some_again(tmp_path: Path) -> None:
    examples = {path.name: path.read_bytes() for path in EXAMPLES.glob("*.yaml")}
    swap_configmap(tmp_path, "..2026_01", examples)
    folder = ManifestFolder(tmp_path, TableStore())
    assert folder.reload() is not None
    good = folder.store.current
    swap_configmap(tmp_path, "..2026_02", {})
    assert folder.reload() is None
    assert folder.store.current is good
    assert "would drop every route served (6)" in str(folder.store.last_error)
    edited = examples["routes.yaml"].replace(b"model: claude-sonnet\n", b"model: claude-renamed\n")
    swap_configmap(tmp_path, "..2026_03", {**examples, "routes.yaml": edited})
    assert folder.reload() is not None
    assert folder.store.current is not None
    assert "claude-renamed" in folder.store.current.routes
    assert (folder.store.generation, folder.store.last_error) == (2, None)


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``modelyard serve --manifests DIR`` (one process) on a copy of the examples: its URL and the folder."""
    folder = tmp_path / "manifests"
    shutil.copytree(EXAMPLES, folder)
    port = free_port()
    args = modelyard("serve", "--manifests", str(folder), "--port", str(port), "--host", "127.0.0.1")
    with process([*args, "--workers", "1", "--reload-interval", "0.1"], tmp_path / "gateway.log"):
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: get_json(f"{url}/readyz")[0] == 200)
        yield url, folder


def listed_models(url: str) -> set[str]:
    with openai.OpenAI(base_url=f"{url}/v1", api_key=DEMO_KEY, max_retries=0) as client:
        return {model.id for model in client.models.list()}


def test_a_folder_emptied_and_filled_again_file_by_file_never_stops_the_service(serving: tuple[str, Path]) -> None:
    url, folder = serving
    served = get_json(f"{url}/readyz")[1]
    models = listed_models(url)
    files = {path: path.read_bytes() for path in sorted(folder.iterdir())}
    for path in files:
        path.unlink()
        time.sleep(0.15)  # the poller may see each step
    wait_for(lambda: "would drop every route served (6)" in str(get_json(f"{url}/readyz")[1]["lastError"]))
    status, ready = get_json(f"{url}/readyz")
    assert (status, ready["generation"], ready["sha256"], ready["routes"]) == (200, 1, served["sha256"], 6)
    assert listed_models(url) == models

    for path, content in files.items():
        path.write_bytes(content)
        time.sleep(0.15)
        assert listed_models(url) == models
    wait_for(lambda: get_json(f"{url}/readyz")[1]["lastError"] is None)
    assert get_json(f"{url}/readyz")[1] == served

    for path in files:
        path.unlink()
    (folder / EMPTY_MARKER).touch()
    wait_for(lambda: get_json(f"{url}/readyz")[1]["routes"] == 0)
    assert get_json(f"{url}/readyz")[1]["generation"] == 2
    with pytest.raises(openai.AuthenticationError):
        listed_models(url)
