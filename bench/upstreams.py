"""The zero-cost upstream: nginx answering every call with a fixed completion, as fast as a server can.

nginx costs a few microseconds per request, so the direct-to-nginx numbers are the physical floor of
this box (kernel, loopback, wrk) and everything a proxy adds shows up as the difference. It also stands
in for the trace collector (``/v1/traces`` takes OTLP/HTTP exports and discards them).
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from bench.procs import LOAD_CPU, Service, pinned, tool

#: A typical short, non-streamed OpenAI answer (~400 bytes), what the passthrough route relays untouched.
OPENAI_COMPLETION = orjson.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "bench-model",
        "system_fingerprint": "fp_bench",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Packets drift downstream, a quiet hop between, nothing lost, just passed.",
                    "refusal": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 27, "completion_tokens": 17, "total_tokens": 44},
    }
)
#: The same answer as an Anthropic Messages response, which the gateway translates to OpenAI's shape.
ANTHROPIC_MESSAGE = orjson.dumps(
    {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": "claude-bench",
        "content": [
            {"type": "text", "text": "Packets drift downstream, a quiet hop between, nothing lost, just passed."}
        ],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 27, "output_tokens": 17},
    }
)

#: The same answer as an OpenAI Responses API response, relayed untouched by the Responses pass-through.
RESPONSES_ANSWER = orjson.dumps(
    {
        "id": "resp_bench",
        "object": "response",
        "created_at": 1700000000,
        "status": "completed",
        "model": "bench-model",
        "output": [
            {
                "type": "message",
                "id": "msg_bench",
                "status": "completed",
                "role": "assistant",
                "content": [
                    {
                        "type": "output_text",
                        "text": "Packets drift downstream, a quiet hop between, nothing lost, just passed.",
                        "annotations": [],
                    }
                ],
            }
        ],
        "usage": {"input_tokens": 27, "output_tokens": 17, "total_tokens": 44},
    }
)

NGINX_CONF = """\
{user}
worker_processes 1;
daemon off;
master_process off;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
events {{ worker_connections 8192; multi_accept on; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    tcp_nodelay on;
    client_body_buffer_size 64k;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = /v1/chat/completions {{ default_type application/json; return 200 '{openai}'; }}
        location = /v1/messages {{ default_type application/json; return 200 '{anthropic}'; }}
        location = /v1/responses {{ default_type application/json; return 200 '{responses}'; }}
        location = /healthz {{ return 200 'ok'; }}
        location /v1/traces {{ return 200 ''; }}
    }}
}}
"""


def _nginx_string(body: bytes) -> str:
    """``body`` inside an nginx single-quoted string (no variables are expanded in JSON like ours)."""
    text = body.decode()
    if "'" in text or "$" in text:
        raise ValueError("fixed bodies must not need nginx escaping")
    return text


def start_nginx(root: Path, port: int, running: list[Service]) -> Service:
    """nginx on ``port``, pinned to the load core, config and temp files under ``root`` (added to ``running``)."""
    root.mkdir(parents=True, exist_ok=True)
    conf = root / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            user="user root;" if os.geteuid() == 0 else "",
            root=root,
            port=port,
            openai=_nginx_string(OPENAI_COMPLETION),
            anthropic=_nginx_string(ANTHROPIC_MESSAGE),
            responses=_nginx_string(RESPONSES_ANSWER),
        )
    )
    argv = [tool("nginx"), "-p", str(root), "-e", str(root / "nginx-error.log"), "-c", str(conf)]
    service = Service("nginx", pinned(LOAD_CPU, argv), root.parent)
    running.append(service)
    service.wait_http(f"http://127.0.0.1:{port}/healthz")
    return service
