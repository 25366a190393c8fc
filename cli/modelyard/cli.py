"""Command-line entry point. Each subcommand imports only what it runs, so the proxy never loads kopf."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from aiohttp import web

    from modelyard_proxy.base.settings import ProxySettings
    from modelyard_proxy.table.standalone import Reloadable
    from modelyard_proxy.table.store import TableStore


def _serve(args: argparse.Namespace) -> int:
    from modelyard_proxy.base.settings import ProxySettings  # noqa: PLC0415
    from modelyard_proxy.serving import server  # noqa: PLC0415
    from modelyard_proxy.table.standalone import ManifestFolder  # noqa: PLC0415
    from modelyard_proxy.table.tablefile import TableFile  # noqa: PLC0415
    from modelyard_routing.push import AdminToken  # noqa: PLC0415

    settings = ProxySettings()
    for name in ("host", "port", "max_body_bytes", "admin_port", "admin_token_file", "workers", "store_url"):
        if getattr(args, name) is not None:
            settings = dataclasses.replace(settings, **{name: getattr(args, name)})
    if args.store_url is not None:  # workers inherit it: a URL may carry a password, so never on a command line
        os.environ["MODELYARD_STORE_URL"] = args.store_url
    if args.manifests is not None:
        if not args.manifests.is_dir():
            print(f"modelyard serve: {args.manifests} is not a folder", file=sys.stderr)
            return 2
        source_for: Callable[[TableStore], Reloadable] = functools.partial(ManifestFolder, args.manifests)
    else:
        source_for = functools.partial(TableFile, args.table)
    # Standalone: metrics and the table state only; the manifest folder is the one source of tables.
    accept_pushes = args.manifests is None
    if args.worker_socket is not None:
        from modelyard_proxy.serving.worker import run_worker  # noqa: PLC0415

        run_worker(settings, source_for, args.reload_interval, args.worker_socket, accept_pushes=accept_pushes)
        return 0
    if settings.workers < 1:
        print("modelyard serve: --workers must be at least 1", file=sys.stderr)
        return 2
    token = None
    if settings.admin_port is not None:
        token = AdminToken.from_env(settings.admin_token_file, "MODELYARD_ADMIN_TOKEN")
        if not token.value():
            print(
                "modelyard serve: the admin port needs a token (--admin-token-file or MODELYARD_ADMIN_TOKEN)",
                file=sys.stderr,
            )
            return 2
    if settings.workers > 1:
        from modelyard_proxy.serving.supervisor import run_supervisor  # noqa: PLC0415

        if settings.store_url is None:
            logging.getLogger("modelyard").warning(
                "no counter store (--store-url): each of the %d workers counts consumers' limits and budgets on "
                "its own, so a consumer may get up to %d times each limit and budget from this pod",
                settings.workers,
                settings.workers,
            )

        return run_supervisor(
            settings,
            _worker_command(args, settings),
            token=token,
            table=args.table,
            reload_interval=args.reload_interval,
        )
    app = server.build_public_app(settings, source_for, args.reload_interval)
    also: list[tuple[web.Application, int]] = []
    if token is not None and settings.admin_port is not None:
        also.append((server.build_admin_app(app, token, accept_pushes=accept_pushes), settings.admin_port))
    server.run_event_loop(
        server.serve_until_stopped(
            app,
            settings.host,
            settings.port,
            access_log=settings.access_log,
            also=also,
            shutdown_timeout=settings.shutdown_timeout,
        )
    )
    return 0


def _worker_command(args: argparse.Namespace, settings: ProxySettings) -> list[str]:
    """``modelyard serve`` for one worker of a supervisor: the same source and settings, no admin port."""
    source = (
        ["--manifests", str(args.manifests.resolve())] if args.manifests else ["--table", str(args.table.resolve())]
    )
    return [
        *(sys.executable, "-m", "modelyard", "--log-level", args.log_level, "serve", *source),
        *("--host", settings.host, "--port", str(settings.port), "--max-body-bytes", str(settings.max_body_bytes)),
        *("--reload-interval", str(args.reload_interval)),
    ]


def _simulate(args: argparse.Namespace) -> int:
    from modelyard_proxy.serving.server import run_event_loop, stop_on_signals  # noqa: PLC0415
    from modelyard_simulator import ScenarioBook, serve  # noqa: PLC0415

    scenarios = ScenarioBook.load(args.scenarios) if args.scenarios else None

    async def simulate() -> None:
        await serve(args.host, args.port, scenarios, until=stop_on_signals())

    run_event_loop(simulate())
    return 0


def _compile(args: argparse.Namespace) -> int:
    import orjson  # noqa: PLC0415

    from modelyard_routing import ManifestError, compile_inventory, load_documents  # noqa: PLC0415
    from modelyard_routing.manifests import manifest_files  # noqa: PLC0415

    try:
        inventory = load_documents(manifest_files(args.manifests) if args.manifests.is_dir() else [args.manifests])
    except ManifestError as exc:
        print(f"modelyard compile: {exc}", file=sys.stderr)
        return 1
    result = compile_inventory(inventory, args.generation)
    report = {
        "table": result.table.model_dump(mode="json"),
        "conditions": {
            str(ref): [
                {"type": c.type, "status": c.status, "reason": c.reason, "message": c.message} for c in conditions
            ]
            for ref, conditions in result.conditions.items()
        },
    }
    sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    failed = any(not c.ok for conditions in result.conditions.values() for c in conditions)
    return 1 if failed else 0


def _operator(args: argparse.Namespace) -> int:
    from modelyard_operator.run import main as run_operator  # noqa: PLC0415
    from modelyard_operator.settings import OperatorSettings  # noqa: PLC0415

    settings = OperatorSettings()
    if args.all_namespaces:
        settings = dataclasses.replace(settings, watch_namespaces=())
    elif args.watch_namespace:
        settings = dataclasses.replace(settings, watch_namespaces=tuple(args.watch_namespace))
    for name in ("namespace", "kubeconfig", "proxy_service", "table_secret", "admin_token_file", "consumer_namespaces"):
        if getattr(args, name) is not None:
            settings = dataclasses.replace(settings, **{name: getattr(args, name)})
    run_operator(settings)
    return 0


def _usage(args: argparse.Namespace) -> int:
    from modelyard.usage import run_usage  # noqa: PLC0415

    return run_usage(
        admin_url=args.admin_url,
        token_file=args.admin_token_file,
        days=args.days,
        consumer=args.consumer,
        as_json=args.json,
        timeout=args.timeout,
    )


def _days(text: str) -> int:
    from modelyard_routing.usage import MAX_USAGE_DAYS  # noqa: PLC0415

    days = int(text)
    if not 1 <= days <= MAX_USAGE_DAYS:
        msg = f"must be from 1 to {MAX_USAGE_DAYS}"
        raise argparse.ArgumentTypeError(msg)
    return days


def build_parser() -> argparse.ArgumentParser:
    """The ``modelyard`` argument parser."""
    parser = argparse.ArgumentParser(prog="modelyard", description=__doc__)
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the OpenAI-compatible API from manifests or the operator's table")
    source = serve.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--manifests", type=Path, help="standalone: folder of ModelRoute/ProviderCredential/Secret YAML"
    )
    source.add_argument("--table", type=Path, help="operator mode: the routing-table file mounted from its Secret")
    serve.add_argument("--host", default=None, help="listen address (default 0.0.0.0, env MODELYARD_HOST)")
    serve.add_argument("--port", type=int, default=None, help="listen port (default 8080, env MODELYARD_PORT)")
    serve.add_argument("--max-body-bytes", type=int, default=None, help="request body limit (default 16 MiB)")
    serve.add_argument("--reload-interval", type=float, default=1.0, help="seconds between manifest/table checks")
    serve.add_argument(
        "--admin-port",
        type=int,
        default=None,
        help="admin port: /metrics, and operator pushes with --table (env MODELYARD_ADMIN_PORT)",
    )
    serve.add_argument(
        "--admin-token-file", type=Path, default=None, help="admin bearer token file (env MODELYARD_ADMIN_TOKEN_FILE)"
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes serving the port; above 1 a supervisor owns the admin port "
        "(default: the container's CPU limit, env MODELYARD_WORKERS)",
    )
    serve.add_argument(
        "--store-url",
        default=None,
        help="Redis/Valkey URL (redis:// or rediss://) shared by every pod and worker for limits and budgets; "
        "the password comes from env MODELYARD_STORE_PASSWORD (env MODELYARD_STORE_URL; default: count per process)",
    )
    serve.add_argument("--worker-socket", type=Path, default=None, help=argparse.SUPPRESS)  # a supervisor's worker
    serve.set_defaults(run=_serve)

    simulated = "serve simulated OpenAI, Azure OpenAI, Anthropic and Gemini APIs"
    simulate = commands.add_parser(
        "simulate",
        help=simulated,
        description=f"{simulated} on one port, each under its own paths, for demos and tests without keys",
    )
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=9100)
    simulate.add_argument("--scenarios", type=Path, default=None, help="YAML scenario book (per-model behaviour)")
    simulate.set_defaults(run=_simulate)

    operator = commands.add_parser("operator", help="run the control plane: compile routes, program the proxies")
    scope = operator.add_mutually_exclusive_group()
    scope.add_argument(
        "--watch-namespace",
        action="append",
        metavar="NS",
        help="serve routes of this namespace (repeatable; default all, env MODELYARD_WATCH_NAMESPACES)",
    )
    scope.add_argument("--all-namespaces", action="store_true", help="serve routes of every namespace")
    operator.add_argument("--namespace", help="where the proxies and the table Secret live (env MODELYARD_NAMESPACE)")
    operator.add_argument("--kubeconfig", type=Path, help="kubeconfig outside the cluster (env KUBECONFIG)")
    operator.add_argument("--proxy-service", help="the proxies' Service (env MODELYARD_PROXY_SERVICE)")
    operator.add_argument("--table-secret", help="the Secret the table is written to (env MODELYARD_TABLE_SECRET)")
    operator.add_argument(
        "--admin-token-file", type=Path, help="admin bearer token file (env MODELYARD_ADMIN_TOKEN_FILE)"
    )
    operator.add_argument(
        "--consumer-namespaces",
        type=lambda value: tuple(ns.strip() for ns in value.split(",") if ns.strip()),
        help="comma list of namespaces whose ModelConsumers are trusted "
        "(default: --namespace; env MODELYARD_CONSUMER_NAMESPACES)",
    )
    operator.set_defaults(run=_operator)

    compile_ = commands.add_parser("compile", help="compile manifests and print the routing table (keys masked)")
    compile_.add_argument("--manifests", type=Path, required=True, help="a manifest file or folder")
    compile_.add_argument("--generation", type=int, default=1)
    compile_.set_defaults(run=_compile)

    usage = commands.add_parser("usage", help="print each consumer's budgets and spend from a proxy's admin port")
    usage.add_argument(
        "--admin-url",
        default=os.environ.get("MODELYARD_ADMIN_URL", "http://127.0.0.1:8081"),
        help="the proxy's admin port (default: env MODELYARD_ADMIN_URL, else http://127.0.0.1:8081 as make run)",
    )
    usage.add_argument(
        "--token-file",
        "--admin-token-file",
        dest="admin_token_file",
        type=Path,
        default=None,
        help="admin bearer token file (env MODELYARD_ADMIN_TOKEN_FILE; else env MODELYARD_ADMIN_TOKEN holds the token)",
    )
    usage.add_argument("--days", type=_days, default=7, help="past UTC days of spend to show (default 7, at most 35)")
    usage.add_argument("--consumer", help="only this consumer: namespace/name, or its name alone")
    usage.add_argument("--json", action="store_true", help="print the report as JSON instead of tables")
    usage.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the answer (default 10)")
    usage.set_defaults(run=_usage)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        # The proxy logs on the request path, where each LogRecord's caller lookup (a stack walk) and its
        # thread and process names cost microseconds per line; the format above uses none of them.
        logging._srcfile = None
        logging.logThreads = False
        logging.logProcesses = False
        logging.logMultiprocessing = False
    code: int = args.run(args)
    return code
