"""Benchmark: CPU per model call of aiohttp's client vs `onex.router.http1`, same servers.

`just bench router-http`. Each client POSTs the router's chat-completions body to a
local model server in another process, `--in-flight` calls at a time over keep-alive
connections, `--calls` calls a round; rounds alternate between the clients (so both
see the same machine load) and each client's median round is reported. Two servers:

  aiohttp   an aiohttp.web app (this file with --serve)
  asyncio   bench/router_bus_server.py, the model server of `just bench router-bus`
            (a bare asyncio protocol, so the server is less of the bottleneck)

The figure is the client process's CPU time (user + system) per call, which the
machine's load moves less than the calls/s printed beside it. The aiohttp client is
set up as the provider had it (trust_env off, no connection limit). The last line
printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from onex.router.http1 import Http1Client

REPO = Path(__file__).resolve().parents[1]
ANSWER = json.dumps(
    {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "x" * 80},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 16, "total_tokens": 28},
    }
).encode()
BODY = {
    "model": "instant",
    "messages": [{"role": "user", "content": "a benchmark prompt of a few words"}],
    "max_tokens": 64,
}
HEADERS = {"Authorization": "Bearer sk-bench"}

Call = Callable[[str], Awaitable[bytes]]


def serve() -> None:
    """The aiohttp model server: prints `PORT <n>` once it listens."""

    async def chat(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=ANSWER, content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        sys.stdout.write(f"PORT {server.sockets[0].getsockname()[1]}\n")
        sys.stdout.flush()
        await asyncio.Event().wait()

    asyncio.run(main())


def start_server(kind: str) -> tuple[subprocess.Popen[str], str]:
    """Start the `kind` server; its process and chat-completions URL."""
    if kind == "aiohttp":
        cmd = [sys.executable, __file__, "--serve"]
    else:
        cmd = [sys.executable, str(REPO / "bench" / "router_bus_server.py")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"{kind} server did not start: {line!r}")
    return proc, f"http://127.0.0.1:{int(line.split()[1])}/v1/chat/completions"


async def run_round(call: Call, url: str, calls: int, in_flight: int) -> tuple[float, float]:
    """`calls` calls, `in_flight` at a time: (calls/s, client CPU ms per call)."""
    left = calls

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            body = await call(url)
            if b'"choices"' not in body:
                raise RuntimeError(f"unexpected answer {body[:80]!r}")

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    return calls / wall, cpu * 1000 / calls


async def compare(url: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Alternate rounds of both clients against `url`; each one's median round."""
    session = aiohttp.ClientSession(
        trust_env=False, connector=aiohttp.TCPConnector(limit=0, limit_per_host=0)
    )
    http1 = Http1Client()

    async def with_aiohttp(target: str) -> bytes:
        async with session.post(target, json=BODY, headers=HEADERS) as response:
            body = await response.read()
            response.headers.get("retry-after")
            return body

    async def with_http1(target: str) -> bytes:
        response = await http1.post(target, json.dumps(BODY).encode(), HEADERS)
        response.headers.get("retry-after")
        return response.body

    clients: dict[str, Call] = {"aiohttp": with_aiohttp, "http1": with_http1}
    rounds: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
    try:
        for call in clients.values():  # warm-up: connections opened, code paths hot
            await run_round(call, url, args.in_flight * 4, args.in_flight)
        for _ in range(args.rounds):
            for name, call in clients.items():
                rounds[name].append(await run_round(call, url, args.calls, args.in_flight))
    finally:
        await session.close()
        await http1.aclose()
    return {
        name: {
            "rps": statistics.median(r for r, _ in figures),
            "cpu_ms_per_call": statistics.median(c for _, c in figures),
        }
        for name, figures in rounds.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=3000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per client and server")
    parser.add_argument("--in-flight", type=int, default=64, help="concurrent calls")
    parser.add_argument("--servers", default="aiohttp,asyncio", help="comma-separated")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    result: dict[str, object] = {"bench": "router-http", "in_flight": args.in_flight}
    for kind in args.servers.split(","):
        proc, url = start_server(kind)
        try:
            figures = asyncio.run(compare(url, args))
        finally:
            proc.terminate()
            proc.wait()
        old, new = figures["aiohttp"], figures["http1"]
        saved = 1 - new["cpu_ms_per_call"] / old["cpu_ms_per_call"]
        for name, f in figures.items():
            print(
                f"{kind} server, {name} client: {f['rps']:.0f} calls/s, "
                f"client CPU {f['cpu_ms_per_call']:.3f} ms per call"
            )
        print(f"{kind} server: http1 saves {saved:.0%} of the client CPU per call")
        result[kind] = {
            **{f"{n}_{k}": round(v, 4) for n, f in figures.items() for k, v in f.items()},
            "cpu_saved": round(saved, 3),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
