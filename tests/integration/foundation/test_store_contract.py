"""What the code relies on from MongoDB, checked on the embedded server and (marked
``mongodb``) again on a real server when ``MONGODB_URI`` is set.

Billing, auth and the OCM mirror are correct only if these hold: every guarded
update is atomic for its one document, unique indexes refuse a second writer with
code 11000, and the update operators below do what MongoDB documents. Nothing here
needs sessions or multi-document transactions, which the embedded server lacks.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from pymongo import ASCENDING, InsertOne, ReturnDocument, UpdateOne
from pymongo.errors import DuplicateKeyError

from chalicelib.store import IndexSpec, ensure_indexes
from chalicelib.store.batches import bulk_write
from tests.concurrency import run_concurrently

THREADS = 8

pytestmark = pytest.mark.mongodb


def _in_threads(work, per_thread: int) -> list[int]:
    """Run ``work()`` ``per_thread`` times in each of THREADS threads; return each thread's success count."""
    counts = [0] * THREADS

    def worker(slot: int) -> None:
        for _ in range(per_thread):
            if work():
                counts[slot] += 1

    run_concurrently(*[lambda slot=slot: worker(slot) for slot in range(THREADS)])
    return counts


def test_a_guarded_decrement_never_passes_its_guard_under_8_threads(db):
    db.wallets.insert_one({"_id": "w", "balance": 1000})

    def debit() -> bool:
        return db.wallets.find_one_and_update({"_id": "w", "balance": {"$gte": 1}}, {"$inc": {"balance": -1}},
                                              return_document=ReturnDocument.AFTER) is not None

    successes = _in_threads(debit, 200)
    assert sum(successes) == 1000
    assert db.wallets.find_one({"_id": "w"})["balance"] == 0


def test_inc_loses_no_update_under_8_threads(db):
    db.counters.insert_one({"_id": "c", "n": 0})
    _in_threads(lambda: db.counters.update_one({"_id": "c"}, {"$inc": {"n": 1}}).modified_count, 500)
    assert db.counters.find_one({"_id": "c"})["n"] == THREADS * 500


def test_of_two_guarded_status_changes_exactly_one_wins(db):
    races = 100
    db.invoices.insert_many([{"_id": i, "status": "PENDING"} for i in range(races)])

    def settle(race: int, status: str, barrier: threading.Barrier, won: list[str]) -> None:
        barrier.wait()
        if db.invoices.update_one({"_id": race, "status": "PENDING"}, {"$set": {"status": status}}).modified_count:
            won.append(status)

    for race in range(races):
        won: list[str] = []
        barrier = threading.Barrier(2)
        run_concurrently(lambda r=race, b=barrier, w=won: settle(r, "PAID", b, w),
                         lambda r=race, b=barrier, w=won: settle(r, "FAILED", b, w))
        assert len(won) == 1, f"race {race}: {won}"
        assert db.invoices.find_one({"_id": race})["status"] == won[0]


def test_a_unique_index_refuses_the_second_writer_with_11000(db):
    ensure_indexes(db, [IndexSpec("invoices", (("sessionId", ASCENDING),), unique=True, name="one_per_session")])
    db.invoices.insert_one({"_id": "a", "sessionId": "s1"})
    with pytest.raises(DuplicateKeyError) as refused:
        db.invoices.insert_one({"_id": "b", "sessionId": "s1"})
    assert refused.value.code == 11000
    assert db.invoices.count_documents({"sessionId": "s1"}) == 1


def test_parallel_inserts_of_one_unique_key_leave_one_document(db):
    ensure_indexes(db, [IndexSpec("ledger", (("walletId", 1), ("sessionId", 1)), unique=True, name="entry")])
    refused: list[int] = []

    def insert(n: int) -> None:
        try:
            db.ledger.insert_one({"_id": n, "walletId": "w", "sessionId": "s"})
        except DuplicateKeyError as exc:
            refused.append(exc.code)

    run_concurrently(*[lambda n=n: insert(n) for n in range(THREADS)])
    assert db.ledger.count_documents({}) == 1
    assert refused == [11000] * (THREADS - 1)


def test_push_with_slice_keeps_the_newest(db):
    db.wallets.insert_one({"_id": "w", "recent": []})
    for n in range(5):
        db.wallets.update_one({"_id": "w"}, {"$push": {"recent": {"$each": [n], "$slice": -3}}})
    assert db.wallets.find_one({"_id": "w"})["recent"] == [2, 3, 4]


def test_pull_removes_and_ne_guards_membership(db):
    db.wallets.insert_one({"_id": "w", "pending": ["e1", "e2"]})
    again = db.wallets.update_one({"_id": "w", "pending": {"$ne": "e1"}}, {"$push": {"pending": "e1"}})
    assert again.matched_count == 0
    db.wallets.update_one({"_id": "w"}, {"$pull": {"pending": "e1"}})
    assert db.wallets.find_one({"_id": "w"})["pending"] == ["e2"]


def test_find_one_and_update_returns_before_or_after_and_upserts(db):
    before = db.counters.find_one_and_update({"_id": "2026"}, {"$inc": {"seq": 1}}, upsert=True,
                                             return_document=ReturnDocument.BEFORE)
    after = db.counters.find_one_and_update({"_id": "2026"}, {"$inc": {"seq": 1}}, upsert=True,
                                            return_document=ReturnDocument.AFTER, projection={"seq": 1, "_id": 0})
    assert before is None
    assert after == {"seq": 2}


def test_in_on_an_indexed_field_finds_exactly_the_asked_ids(db):
    ensure_indexes(db, [IndexSpec("stations", (("ocm_id", 1),), unique=True, name="ocm_id")])
    db.stations.insert_many([{"ocm_id": n, "v": n % 7} for n in range(5000)])
    wanted = list(range(0, 5000, 5)) + [10**9]
    found = {doc["ocm_id"] for doc in db.stations.find({"ocm_id": {"$in": wanted}}, {"ocm_id": 1})}
    assert found == set(range(0, 5000, 5))


def test_a_ttl_index_is_created_with_its_expiry(db):
    specs = [IndexSpec("tokens", (("expiresAt", 1),), name="tokens_ttl", options={"expireAfterSeconds": 0})]
    assert ensure_indexes(db, specs) == ["tokens.tokens_ttl"]
    assert ensure_indexes(db, specs) == ["tokens.tokens_ttl"]
    indexes = {index["name"]: index for index in db.tokens.list_indexes()}
    assert indexes["tokens_ttl"]["expireAfterSeconds"] == 0


def test_bulk_write_counts_inserts_from_the_write_errors(db):
    """mongo-java-server's nInserted counts failed inserts too; ``bulk_write`` must not use it."""
    ensure_indexes(db, [IndexSpec("things", (("key", 1),), unique=True, name="things_key")])
    db.things.insert_one({"_id": "seed", "key": 0, "v": 0})
    operations = [InsertOne({"_id": n, "key": n % 3}) for n in range(1, 6)]
    operations.append(UpdateOne({"_id": "seed"}, {"$set": {"v": 1}}))
    outcome = bulk_write(db.things, operations)
    assert (outcome.inserted, outcome.duplicate_keys, outcome.modified, outcome.round_trips) == (2, 3, 1, 1)
    assert db.things.count_documents({}) == 3


def test_a_large_unordered_bulk_goes_in_one_call(db):
    db.things.insert_many([{"_id": n, "v": 0} for n in range(2500)])
    outcome = bulk_write(db.things, [UpdateOne({"_id": n}, {"$set": {"v": 1}}) for n in range(2500)])
    assert (outcome.modified, outcome.round_trips) == (2500, 1)
    assert db.things.count_documents({"v": 1}) == 2500


def test_dates_come_back_timezone_aware_at_millisecond_precision(db):
    moment = dt.datetime(2026, 2, 21, 14, 31, 0, 123456, tzinfo=dt.UTC)
    db.times.insert_one({"_id": 1, "at": moment})
    assert db.times.find_one({"_id": 1})["at"] == moment.replace(microsecond=123000)
