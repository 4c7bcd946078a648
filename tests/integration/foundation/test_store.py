import pytest

from chalicelib.config import load_section
from chalicelib.store import TransientStoreError, get_database, reset_clients
from chalicelib.store.errors import translate_errors
from chalicelib.store.settings import StoreSettings


def test_unreachable_store_is_a_transient_error():
    settings = load_section(StoreSettings, {"MONGODB_URI": "mongodb://127.0.0.1:9/", "MONGODB_TIMEOUT_MS": "200"})
    try:
        with pytest.raises(TransientStoreError, match="store unavailable"):
            with translate_errors("ping"):
                get_database(settings).command("ping")
    finally:
        reset_clients()


@pytest.mark.parametrize("code", [50, 91, 112, 189, 262, 10107, 11600, 11602, 13435, 13436])
def test_busy_or_failing_over_server_codes_are_transient(code):
    from pymongo.errors import OperationFailure

    with pytest.raises(TransientStoreError, match=f"code {code}"):
        with translate_errors("update wallet"):
            raise OperationFailure("server says no", code=code)


@pytest.mark.parametrize("label", ["TransientTransactionError", "RetryableWriteError"])
def test_transient_error_labels_are_transient(label):
    from pymongo.errors import OperationFailure

    with pytest.raises(TransientStoreError):
        with translate_errors("update wallet"):
            raise OperationFailure("no luck", code=251, details={"errorLabels": [label], "code": 251})


@pytest.mark.parametrize("code", [2, 9, 121, 13, 17280])  # BadValue, FailedToParse, validation, Unauthorized, key
def test_request_errors_stay_permanent(code):
    from pymongo.errors import OperationFailure

    from chalicelib.store import PermanentStoreError

    with pytest.raises(PermanentStoreError):
        with translate_errors("find"):
            raise OperationFailure("bad request", code=code)


def test_duplicate_key_is_left_to_the_caller():
    from pymongo.errors import DuplicateKeyError

    with pytest.raises(DuplicateKeyError):
        with translate_errors("insert"):
            raise DuplicateKeyError("E11000 duplicate key", code=11000)
