from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import wrappers_pb2 as _wrappers_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Mesh(_message.Message):
    __slots__ = ("tracing",)
    TRACING_FIELD_NUMBER: _ClassVar[int]
    tracing: Tracing
    def __init__(self, tracing: _Optional[_Union[Tracing, _Mapping]] = ...) -> None: ...

class Tracing(_message.Message):
    __slots__ = ("default_backend", "backends")
    DEFAULT_BACKEND_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    default_backend: str
    backends: _containers.RepeatedCompositeFieldContainer[TracingBackend]
    def __init__(self, default_backend: _Optional[str] = ..., backends: _Optional[_Iterable[_Union[TracingBackend, _Mapping]]] = ...) -> None: ...

class TracingBackend(_message.Message):
    __slots__ = ("name", "sampling", "type", "conf")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CONF_FIELD_NUMBER: _ClassVar[int]
    name: str
    sampling: _wrappers_pb2.DoubleValue
    type: str
    conf: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., sampling: _Optional[_Union[_wrappers_pb2.DoubleValue, _Mapping]] = ..., type: _Optional[str] = ..., conf: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ZipkinTracingBackendConfig(_message.Message):
    __slots__ = ("url", "trace_id128bit", "api_version", "shared_span_context")
    URL_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID128BIT_FIELD_NUMBER: _ClassVar[int]
    API_VERSION_FIELD_NUMBER: _ClassVar[int]
    SHARED_SPAN_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    url: str
    trace_id128bit: bool
    api_version: str
    shared_span_context: _wrappers_pb2.BoolValue
    def __init__(self, url: _Optional[str] = ..., trace_id128bit: _Optional[bool] = ..., api_version: _Optional[str] = ..., shared_span_context: _Optional[_Union[_wrappers_pb2.BoolValue, _Mapping]] = ...) -> None: ...

class DatadogTracingBackendConfig(_message.Message):
    __slots__ = ("address", "port", "split_service")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    SPLIT_SERVICE_FIELD_NUMBER: _ClassVar[int]
    address: str
    port: int
    split_service: bool
    def __init__(self, address: _Optional[str] = ..., port: _Optional[int] = ..., split_service: _Optional[bool] = ...) -> None: ...

class Selector(_message.Message):
    __slots__ = ("match",)
    class MatchEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MATCH_FIELD_NUMBER: _ClassVar[int]
    match: _containers.ScalarMap[str, str]
    def __init__(self, match: _Optional[_Mapping[str, str]] = ...) -> None: ...

class TrafficTrace(_message.Message):
    __slots__ = ("selectors", "conf")
    class Conf(_message.Message):
        __slots__ = ("backend",)
        BACKEND_FIELD_NUMBER: _ClassVar[int]
        backend: str
        def __init__(self, backend: _Optional[str] = ...) -> None: ...
    SELECTORS_FIELD_NUMBER: _ClassVar[int]
    CONF_FIELD_NUMBER: _ClassVar[int]
    selectors: _containers.RepeatedCompositeFieldContainer[Selector]
    conf: TrafficTrace.Conf
    def __init__(self, selectors: _Optional[_Iterable[_Union[Selector, _Mapping]]] = ..., conf: _Optional[_Union[TrafficTrace.Conf, _Mapping]] = ...) -> None: ...

class Dataplane(_message.Message):
    __slots__ = ("networking",)
    class Networking(_message.Message):
        __slots__ = ("address", "inbound", "outbound")
        class Inbound(_message.Message):
            __slots__ = ("port", "service_port", "service_address", "address", "tags")
            class TagsEntry(_message.Message):
                __slots__ = ("key", "value")
                KEY_FIELD_NUMBER: _ClassVar[int]
                VALUE_FIELD_NUMBER: _ClassVar[int]
                key: str
                value: str
                def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
            PORT_FIELD_NUMBER: _ClassVar[int]
            SERVICE_PORT_FIELD_NUMBER: _ClassVar[int]
            SERVICE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
            ADDRESS_FIELD_NUMBER: _ClassVar[int]
            TAGS_FIELD_NUMBER: _ClassVar[int]
            port: int
            service_port: int
            service_address: str
            address: str
            tags: _containers.ScalarMap[str, str]
            def __init__(self, port: _Optional[int] = ..., service_port: _Optional[int] = ..., service_address: _Optional[str] = ..., address: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ...) -> None: ...
        class Outbound(_message.Message):
            __slots__ = ("port", "address", "tags")
            class TagsEntry(_message.Message):
                __slots__ = ("key", "value")
                KEY_FIELD_NUMBER: _ClassVar[int]
                VALUE_FIELD_NUMBER: _ClassVar[int]
                key: str
                value: str
                def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
            PORT_FIELD_NUMBER: _ClassVar[int]
            ADDRESS_FIELD_NUMBER: _ClassVar[int]
            TAGS_FIELD_NUMBER: _ClassVar[int]
            port: int
            address: str
            tags: _containers.ScalarMap[str, str]
            def __init__(self, port: _Optional[int] = ..., address: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ...) -> None: ...
        ADDRESS_FIELD_NUMBER: _ClassVar[int]
        INBOUND_FIELD_NUMBER: _ClassVar[int]
        OUTBOUND_FIELD_NUMBER: _ClassVar[int]
        address: str
        inbound: _containers.RepeatedCompositeFieldContainer[Dataplane.Networking.Inbound]
        outbound: _containers.RepeatedCompositeFieldContainer[Dataplane.Networking.Outbound]
        def __init__(self, address: _Optional[str] = ..., inbound: _Optional[_Iterable[_Union[Dataplane.Networking.Inbound, _Mapping]]] = ..., outbound: _Optional[_Iterable[_Union[Dataplane.Networking.Outbound, _Mapping]]] = ...) -> None: ...
    NETWORKING_FIELD_NUMBER: _ClassVar[int]
    networking: Dataplane.Networking
    def __init__(self, networking: _Optional[_Union[Dataplane.Networking, _Mapping]] = ...) -> None: ...

class MeshTrace(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: _struct_pb2.Struct
    def __init__(self, spec: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...
