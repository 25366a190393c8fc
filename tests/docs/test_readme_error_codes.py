"""The README's error table names every error ``code`` the gateway itself can send, so the two cannot drift.

Codes are read from the proxy's source: every string a ``code=`` argument can take (literals and module
constants), and the codes of the upstream fault table. Codes passed through from an upstream's own error body are the provider's, not ours.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROXY = ROOT / "proxy" / "modelyard_proxy"
TABLE_HEADER = "| situation | status | `code` |"


def module_strings(tree: ast.Module) -> dict[str, str]:
    """A module's top-level ``NAME = "text"`` constants, so ``code=NAME`` counts as well as ``code="text"``."""
    constants: dict[str, str] = {}
    for statement in tree.body:
        if isinstance(statement, ast.Assign | ast.AnnAssign) and isinstance(statement.value, ast.Constant):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            for target in targets:
                if isinstance(target, ast.Name) and isinstance(statement.value.value, str):
                    constants[target.id] = statement.value.value
    return constants


def strings_in(node: ast.AST, constants: dict[str, str]) -> Iterator[str]:
    """Every string an expression can evaluate to (``"a" if x else "b"`` gives both)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.Name) and node.id in constants:
        yield constants[node.id]
    elif isinstance(node, ast.IfExp):
        yield from strings_in(node.body, constants)
        yield from strings_in(node.orelse, constants)
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            yield from strings_in(value, constants)


def codes_in_source(tree: ast.Module) -> Iterator[str]:
    constants = module_strings(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for keyword in node.keywords:
            if keyword.arg == "code":
                yield from strings_in(keyword.value, constants)
        callee = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        if callee == "UpstreamFault" and len(node.args) > 1:
            yield from strings_in(node.args[1], constants)


def gateway_codes() -> set[str]:
    codes: set[str] = set()
    for path in PROXY.rglob("*.py"):
        codes.update(codes_in_source(ast.parse(path.read_text(), filename=str(path))))
    return codes


def readme_codes() -> set[str]:
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index(TABLE_HEADER)
    codes: set[str] = set()
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        code_column = re.sub(r"\(.*?\)", "", line.rstrip("|").split("|")[-1])  # notes in brackets are not codes
        codes.update(re.findall(r"`([a-z_]+)`", code_column))
    return codes


def test_the_source_scan_finds_the_gateways_codes() -> None:
    # Guards the scan itself: codes from keyword arguments, conditional expressions and the fault table.
    found = gateway_codes()
    assert {"model_not_found", "insufficient_quota", "rate_limit_exceeded", "upstream_auth_failed"} <= found
    assert "client_disconnected" in found  # code=CLIENT_DISCONNECTED, a module constant


def test_every_code_the_gateway_sends_is_in_the_readme_table() -> None:
    missing = gateway_codes() - readme_codes()
    assert not missing, f"add these codes to the README's error table: {sorted(missing)}"


def test_the_readme_table_names_no_code_the_gateway_never_sends() -> None:
    stale = readme_codes() - gateway_codes()
    assert not stale, f"the README's error table names codes the gateway never sends: {sorted(stale)}"
