import pytest
from pymongo import InsertOne, UpdateOne

from chalicelib.config import load_settings
from chalicelib.store import IndexSpec, TransientStoreError, ensure_indexes, get_database, reset_clients
from chalicelib.store.batches import bulk_write_chunked
from chalicelib.store.errors import translate_errors


@pytest.mark.mongodb
def test_index_creation_is_idempotent_and_unique_holds(db):
    specs = [IndexSpec("things", (("key", 1),), unique=True)]
    first = ensure_indexes(db, specs)
    assert ensure_indexes(db, specs) == first
    outcome = bulk_write_chunked(db.things, [InsertOne({"_id": i, "key": i % 3}) for i in range(5)], 90)
    assert outcome.inserted == 3
    assert outcome.duplicate_keys == 2
    assert db.things.count_documents({}) == 3


@pytest.mark.mongodb
def test_a_ttl_index_is_created_where_the_server_has_them_and_reported_skipped_where_not(db, db_backend):
    specs = [IndexSpec("expiring", (("expiresAt", 1),), name="expiring_ttl", options={"expireAfterSeconds": 0}),
             IndexSpec("expiring", (("key", 1),), name="expiring_key")]
    names = ensure_indexes(db, specs)
    assert ensure_indexes(db, specs) == names
    indexes = {i["name"]: i for i in db.expiring.list_indexes()}
    assert "expiring_key" in indexes and names[1] == "expiring.expiring_key"
    if db_backend == "ferretdb":  # FerretDB 1.24 answers NotImplemented
        assert names[0] == "expiring.expiring_ttl (skipped: this server has no TTL indexes)"
        assert "expiring_ttl" not in indexes
    else:
        assert indexes["expiring_ttl"]["expireAfterSeconds"] == 0


def test_other_index_failures_are_not_taken_for_a_missing_ttl(db):
    db.clash.create_index([("key", 1)], name="clash_key")
    with pytest.raises(Exception, match="create index on clash"):
        ensure_indexes(db, [IndexSpec("clash", (("other", 1),), name="clash_key")])


@pytest.mark.mongodb
def test_chunked_updates_go_past_the_embedded_stores_batch_limit(db):
    db.things.insert_many([{"_id": i, "v": 0} for i in range(250)])
    outcome = bulk_write_chunked(db.things, [UpdateOne({"_id": i}, {"$set": {"v": 1}}) for i in range(250)], 90)
    assert outcome.modified == 250
    assert outcome.round_trips == 3
    assert db.things.count_documents({"v": 1}) == 250


def test_unreachable_store_is_a_transient_error():
    settings = load_settings({"MONGODB_URI": "mongodb://127.0.0.1:9/", "MONGODB_TIMEOUT_MS": "200"})
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


@pytest.mark.parametrize("message", ["database is locked", "SQLITE_BUSY: database is locked (5)",
                                     "sqlite: database table is locked"])
def test_ferretdb_sqlite_lock_messages_are_transient(message):
    from pymongo.errors import OperationFailure, WriteError

    for error in (OperationFailure(message, code=1), WriteError(message, code=1)):
        with pytest.raises(TransientStoreError):
            with translate_errors("insert invoice"):
                raise error


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


def test_the_embedded_store_finds_by_id_through_the_id_index(db):
    """FerretDB 1.24 as released scans the table for every _id lookup; tools/ferretdb/build.sh patches that."""
    db.things.insert_many([{"_id": f"t{i}", "n": i} for i in range(20)])
    plan = db.command("explain", {"find": "things", "filter": {"_id": "t7"}})["queryPlanner"]["Plan"]
    assert any("USING INDEX" in step and "__id_" in step for step in plan), plan
    assert db.things.find_one({"_id": "t7"})["n"] == 7
    db.things.update_one({"_id": "t7"}, {"$set": {"n": 70}})
    db.things.delete_one({"_id": "t8"})
    assert db.things.find_one({"_id": "t7"})["n"] == 70 and db.things.find_one({"_id": "t8"}) is None
