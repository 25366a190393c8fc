"""The layers in pyproject.toml's import-linter contracts hold for the tree, and fail `make lint` once broken.

Each broken case copies the packages to a temporary folder, adds one import that crosses a layer, and runs
``lint-imports`` against the copy with the project's own contracts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
#: Folder -> the packages in it, as pyproject.toml's wheel lists them.
SOURCES = {
    "cli": ["modelyard"],
    "contract": ["modelyard_routing"],
    "proxy": ["modelyard_tracing", "modelyard_proxy", "modelyard_simulator"],
    "operator": ["modelyard_operator"],
}


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` with the project's contracts over the packages under ``tree``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(tree / folder) for folder in SOURCES)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for folder, packages in SOURCES.items():
        for package in packages:
            shutil.copytree(
                ROOT / folder / package,
                tmp_path / folder / package,
                ignore=shutil.ignore_patterns("__pycache__"),
            )
    return tmp_path


def test_the_tree_keeps_every_contract(tree: Path) -> None:
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


CROSSINGS = [
    ("contract/modelyard_routing/table.py", "import aiohttp", "The contract imports neither process"),
    (
        "contract/modelyard_routing/compiler.py",
        "import modelyard_proxy.table.store",
        "The contract imports neither process",
    ),
    ("operator/modelyard_operator/publisher.py", "import modelyard_proxy.api.admin", "never import each other"),
    ("proxy/modelyard_proxy/table/store.py", "import modelyard_operator.kube", "never import each other"),
    (
        "proxy/modelyard_proxy/providers/openai_chat_to_openai_chat/adapter.py",
        "import modelyard_proxy.relay.run",
        "Providers import neither",
    ),
    ("proxy/modelyard_proxy/routing/balancers.py", "import modelyard_proxy.providers.registry", "Routing imports no"),
    ("proxy/modelyard_simulator/engine.py", "import modelyard_proxy.base.errors", "simulator and the gateway"),
    ("proxy/modelyard_proxy/upstream/client.py", "import modelyard_routing", "upstream HTTP client is a leaf"),
    ("proxy/modelyard_proxy/observability/metrics.py", "import kopf", "never loads kopf"),
    ("proxy/modelyard_proxy/base/errors.py", "import modelyard_proxy.relay.run", "rooms, top to bottom"),
    ("proxy/modelyard_proxy/table/store.py", "import modelyard_proxy.api.handlers", "rooms, top to bottom"),
    ("proxy/modelyard_proxy/table/store.py", "import modelyard_proxy.observability.metrics", "rooms, top to bottom"),
    ("proxy/modelyard_proxy/failures/classify.py", "import modelyard_proxy.routing.health", "rooms, top to bottom"),
    ("proxy/modelyard_proxy/base/sse.py", "import modelyard_routing.table", "base imports nothing"),
    ("proxy/modelyard_proxy/tenancy/ledger.py", "import modelyard_proxy.relay.run", "rooms, top to bottom"),
    ("proxy/modelyard_proxy/tenancy/shared.py", "import aiohttp", "The counters know nothing of HTTP"),
    ("proxy/modelyard_proxy/conversations/store.py", "import aiohttp", "Kept conversations know nothing of HTTP"),
    ("proxy/modelyard_proxy/cloudauth/registry.py", "import aiohttp", "Call authorisers know nothing of HTTP"),
    ("proxy/modelyard_proxy/cloudauth/authorizer.py", "import modelyard_proxy.upstream", "Call authorisers know"),
]


@pytest.mark.parametrize(("module", "crossing", "contract"), CROSSINGS, ids=[Path(c[0]).stem for c in CROSSINGS])
def test_an_import_across_a_layer_breaks_its_contract(tree: Path, module: str, crossing: str, contract: str) -> None:
    path = tree / module
    path.write_text(f"{path.read_text()}\n{crossing}\n")
    result = lint_imports(tree)
    assert result.returncode != 0, result.stdout
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in " ".join(broken.split()), result.stdout
