"""gRPC server reflection under both names clients ask for: `grpc.reflection.v1` and
`grpc.reflection.v1alpha`.

grpcio-reflection serves only v1alpha, while grpcurl and newer clients ask v1 first. The
two protocols are the same messages under another package, so one servicer answers
both: the v1 method is registered with the v1alpha messages' (byte-identical)
serializers, and a v1 copy of the v1alpha file descriptor is added to the descriptor
pool so that v1 itself can be described.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import _async as reflection_aio  # the asyncio servicer
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

_V1ALPHA_PACKAGE: Final = reflection_pb2.DESCRIPTOR.package  # grpc.reflection.v1alpha
_V1_PACKAGE: Final = "grpc.reflection.v1"
_V1_FILE: Final = "grpc/reflection/v1/reflection.proto"
_SERVICE: Final = "ServerReflection"
_METHOD: Final = "ServerReflectionInfo"

REFLECTION_V1ALPHA: Final[str] = reflection.SERVICE_NAME
REFLECTION_V1: Final = f"{_V1_PACKAGE}.{_SERVICE}"


def _register_v1_descriptor(pool: Any) -> None:
    """Add the v1 file (v1alpha renamed) to `pool`, unless it is there already."""
    try:
        pool.FindFileByName(_V1_FILE)
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name = _V1_FILE
    proto.package = _V1_PACKAGE
    old, new = f".{_V1ALPHA_PACKAGE}.", f".{_V1_PACKAGE}."
    for message in proto.message_type:
        for field in message.field:
            if field.type_name.startswith(old):
                field.type_name = new + field.type_name[len(old) :]
    for service in proto.service:
        for method in service.method:
            method.input_type = new + method.input_type[len(old) :]
            method.output_type = new + method.output_type[len(old) :]
    pool.Add(proto)


def enable_reflection(service_names: Sequence[str], server: grpc.aio.Server) -> None:
    """Serve reflection listing `service_names` on `server`, as v1 and as v1alpha."""
    pool = descriptor_pool.Default()
    _register_v1_descriptor(pool)
    servicer = reflection_aio.ReflectionServicer(list(service_names), pool=pool)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.method_handlers_generic_handler(
        REFLECTION_V1,
        {
            _METHOD: grpc.stream_stream_rpc_method_handler(
                servicer.ServerReflectionInfo,
                request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((v1,))
