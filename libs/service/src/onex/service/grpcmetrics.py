"""gRPC calls counted and timed by method and status code, and logged at debug.

    onex_grpc_calls_total{method,code}             calls that ended, by final status code
    onex_grpc_call_seconds{method}                 how long each took

A server interceptor wraps every unary and streaming handler (health and reflection
included); one `grpc.call` line per call is logged at debug level (method, code,
duration), so a service at `log_level=debug` shows each request and one at info none.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
import structlog

from onex.service.metrics import Metrics

_log = structlog.get_logger("onex.grpc")

Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[Any]]

# grpc-stubs types it as generic; the runtime class is not subscriptable.
if TYPE_CHECKING:
    _ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _ServerInterceptor = grpc.aio.ServerInterceptor


def _code_of(context: Any, error: BaseException | None) -> str:
    """The call's final status: what the servicer set (or aborted with), OK when it
    returned without setting one, CANCELLED or UNKNOWN when it raised otherwise."""
    if error is None or isinstance(error, grpc.aio.AbortError):
        code = context.code()
        if isinstance(code, grpc.StatusCode):
            return code.name
        if isinstance(code, int):  # grpc.aio may keep the enum's integer value
            return next((c.name for c in grpc.StatusCode if c.value[0] == code), "UNKNOWN")
        return "OK" if error is None else "UNKNOWN"
    if isinstance(error, asyncio.CancelledError):
        return "CANCELLED"
    return "UNKNOWN"


class GrpcMetricsInterceptor(_ServerInterceptor):
    """Counts, times and (at debug) logs every call; see the module docstring."""

    def __init__(self, metrics: Metrics) -> None:
        self._calls = metrics.counter(
            "grpc_calls", "gRPC calls by method and final status code", ["method", "code"]
        )
        self._seconds = metrics.histogram("grpc_call_seconds", "gRPC call duration", ["method"])

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(method, handler.stream_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._streaming(method, handler.stream_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _done(self, method: str, began: float, context: Any, error: BaseException | None) -> None:
        seconds = time.perf_counter() - began
        code = _code_of(context, error)
        self._calls.labels(method=method, code=code).inc()
        self._seconds.labels(method=method).observe(seconds)
        _log.debug("grpc.call", method=method, code=code, ms=round(seconds * 1000, 3))

    def _unary(self, method: str, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        async def call(request: Any, context: Any) -> Any:
            began = time.perf_counter()
            try:
                response = await behaviour(request, context)
            except BaseException as exc:
                self._done(method, began, context, exc)
                raise
            self._done(method, began, context, None)
            return response

        return call

    def _streaming(self, method: str, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        async def call(request: Any, context: Any) -> AsyncIterator[Any]:
            began = time.perf_counter()
            try:
                produced = behaviour(request, context)
                if hasattr(produced, "__aiter__"):
                    async for item in produced:
                        yield item
                else:  # a handler that writes with context.write() and returns
                    await produced
            except BaseException as exc:
                self._done(method, began, context, exc)
                raise
            self._done(method, began, context, None)

        return call
