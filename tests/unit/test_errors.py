"""The error tree: errors survive pickling (they cross Ray) and map to one status and exit code."""

import pickle

from jobico.errors import (
    EXIT_CODE,
    HTTP_STATUS,
    Conflict,
    EventRejected,
    JobicoError,
    NotRunning,
    PackageInvalid,
    from_code,
    lookup,
)


def test_errors_pickle_with_their_details() -> None:
    error = PackageInvalid("queues[0].id: duplicate", path="queues[0].id")
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is PackageInvalid
    assert back.message == error.message and back.details == {"path": "queues[0].id"}


def test_each_error_maps_to_the_status_of_its_most_specific_group() -> None:
    assert lookup(HTTP_STATUS, EventRejected("bad")) == 422
    assert lookup(HTTP_STATUS, PackageInvalid("bad")) == 400
    assert lookup(HTTP_STATUS, NotRunning("down")) == 503
    assert lookup(EXIT_CODE, Conflict("exists")) == 4


def test_the_json_shape_carries_code_message_and_details() -> None:
    body = EventRejected("data[1]: 'age' is required", index=1).to_dict()
    assert body == {"code": "event_rejected", "message": "data[1]: 'age' is required", "index": 1}


def test_every_error_is_rebuilt_from_its_code_message_and_details() -> None:
    def tree(cls: type[JobicoError]) -> list[type[JobicoError]]:
        return [cls, *(c for sub in cls.__subclasses__() for c in tree(sub))]

    for cls in tree(JobicoError):
        rebuilt = from_code(cls.code, "m", {"queue": "q"})
        assert type(rebuilt) is cls
        assert rebuilt.to_dict() == {"code": cls.code, "message": "m", "queue": "q"}
    assert type(from_code("from_a_newer_version", "m", {})) is JobicoError
