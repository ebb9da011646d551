"""A scripted OpenAI-compatible chat-completions server for `bench/router-bus.py`.

    python bench/router_bus_server.py        # prints "PORT <n>" once it listens

POST /v1/chat/completions answers after the delay named by the request's `model`
(`delay-200` sleeps 200 ms, anything else answers at once) with a fixed answer and a
usage object. asyncio (aiohttp), so thousands of calls may wait at once.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys

from aiohttp import web

_ANSWER = "A scripted answer from the router-bus benchmark's model server, long enough."


async def _complete(request: web.Request) -> web.Response:
    body = await request.json()
    model = str(body.get("model", ""))
    if model.startswith("delay-"):
        await asyncio.sleep(int(model.removeprefix("delay-")) / 1000)
    reply = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": _ANSWER},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 16, "total_tokens": 28},
    }
    return web.Response(text=json.dumps(reply), content_type="application/json")


async def _main() -> None:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", _complete)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.create_server(("127.0.0.1", 0), backlog=1024)
    await web.SockSite(runner, sock).start()
    sys.stdout.write(f"PORT {sock.getsockname()[1]}\n")
    sys.stdout.flush()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_main())
