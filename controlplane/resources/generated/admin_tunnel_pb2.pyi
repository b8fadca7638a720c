from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AdminView(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ADMIN_VIEW_UNSPECIFIED: _ClassVar[AdminView]
    CONFIG_DUMP: _ClassVar[AdminView]
    STATS: _ClassVar[AdminView]
    CLUSTERS: _ClassVar[AdminView]
ADMIN_VIEW_UNSPECIFIED: AdminView
CONFIG_DUMP: AdminView
STATS: AdminView
CLUSTERS: AdminView

class TunnelUp(_message.Message):
    __slots__ = ("hello", "response")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    response: AdminResponse
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., response: _Optional[_Union[AdminResponse, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class TunnelDown(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: AdminRequest
    def __init__(self, request: _Optional[_Union[AdminRequest, _Mapping]] = ...) -> None: ...

class AdminRequest(_message.Message):
    __slots__ = ("id", "view")
    ID_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    id: int
    view: AdminView
    def __init__(self, id: _Optional[int] = ..., view: _Optional[_Union[AdminView, str]] = ...) -> None: ...

class AdminResponse(_message.Message):
    __slots__ = ("id", "status", "content_type", "chunk", "last", "error")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    id: int
    status: int
    content_type: str
    chunk: bytes
    last: bool
    error: str
    def __init__(self, id: _Optional[int] = ..., status: _Optional[int] = ..., content_type: _Optional[str] = ..., chunk: _Optional[bytes] = ..., last: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...
