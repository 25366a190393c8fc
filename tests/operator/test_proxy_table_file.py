"""Operator mode on the proxy side: starting from the mounted table Secret, and the ``serve`` flags for it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from modelyard.cli import main
from modelyard_proxy.table.store import TableStore
from modelyard_proxy.table.tablefile import TableFile
from modelyard_routing import RoutingTable, compile_inventory
from tests.harness import example_inventory


def table(generation: int) -> RoutingTable:
    return compile_inventory(example_inventory("http://127.0.0.1:9"), generation).table


def last_error(store: TableStore) -> str:
    return store.last_error or ""


def mount(directory: Path, content: bytes) -> None:
    """Update a Secret mount the kubelet's way: a new timestamped folder, then an atomic ``..data`` swap."""
    version = Path(tempfile.mkdtemp(prefix="..2026_", dir=directory))
    (version / "routing-table.json").write_bytes(content)
    link = directory / "..data_tmp"
    link.symlink_to(version.name)
    link.replace(directory / "..data")
    if not (directory / "routing-table.json").is_symlink():
        (directory / "routing-table.json").symlink_to("..data/routing-table.json")


def test_the_mounted_table_is_followed_forward_never_back(tmp_path: Path) -> None:
    store = TableStore()
    source = TableFile(tmp_path / "routing-table.json", store)
    assert source.reload() is False
    assert store.current is None

    mount(tmp_path, table(2).to_wire())
    assert source.changed()
    assert source.reload() is True
    assert store.generation == 2

    mount(tmp_path, table(1).to_wire())  # a push got there first: the file lags behind
    assert source.changed()
    assert source.reload() is False
    assert store.generation == 2
    assert last_error(store) == ""

    mount(tmp_path, b"{broken")
    source.reload()
    assert store.generation == 2
    assert "routing-table.json" in last_error(store)

    mount(tmp_path, table(3).to_wire())
    assert source.reload() is True
    assert store.generation == 3
    assert last_error(store) == ""
    assert not source.changed()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--table", "t.json", "--admin-port", "0"], "needs a token"),
        (["--manifests", ".", "--admin-port", "0"], "needs a token"),  # standalone: /metrics needs one too
    ],
)
def test_serve_refuses_an_admin_port_it_cannot_guard(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODELYARD_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("MODELYARD_ADMIN_TOKEN_FILE", raising=False)
    assert main(["serve", *args]) == 2
    assert message in capsys.readouterr().err


def test_serve_takes_a_manifest_folder_or_a_table_not_both(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--manifests", os.curdir, "--table", "t.json"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
