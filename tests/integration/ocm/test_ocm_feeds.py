"""Checkpoints belong to the feed they came from (API URL + country set).

Found when a mirror synced from the local stand-in was pointed at another API: the
incremental run reused the old checkpoint, asked for records modified since then,
and processed 0 of the new feed's records, all older than that.
"""

from __future__ import annotations

from chalicelib.ocm.client import ClientConfig, OcmClient
from chalicelib.ocm.sync import SyncDeps, run_sync

API_KEY = "test-key-123"


def _client(server, countries: tuple[str, ...] = ()) -> OcmClient:
    return OcmClient(ClientConfig(base_url=server.url, api_key=API_KEY, timeout_seconds=10, retries=3,
                                  backoff_factor=0.01, backoff_jitter=0.01, countries=countries))


def _sync(server, repo, clock, opts, countries: tuple[str, ...] = (), **options):
    client = _client(server, countries)
    try:
        return run_sync(SyncDeps(client, repo, None, clock), opts(countries=countries, **options))
    finally:
        client.close()


def test_a_mirror_pointed_at_another_api_reads_that_feed_in_full(standin, start_feed, repo, clock, opts):
    first = _sync(standin, repo, clock, opts)
    clock.advance(hours=6)
    # Feed B: another port, another data set (700 records re-numbered 1..700, last modified in 2010-2020,
    # long before A's checkpoint).
    other = start_feed(synthetic=700)

    switched = _sync(other, repo, clock, opts)

    assert first["processed"] == 1586
    assert switched["processed"] == 700 and switched["inserted"] == 700 and switched["complete"] is True
    assert "modifiedsince" not in other.requests[0]["params"]  # no checkpoint for B: everything
    assert repo.count() == 1586 + 700


def test_each_feed_keeps_its_own_checkpoint(standin, start_feed, repo, clock, opts):
    _sync(standin, repo, clock, opts)
    other = start_feed(synthetic=300)
    clock.advance(hours=1)
    _sync(other, repo, clock, opts)
    clock.advance(hours=1)
    standin.requests.clear()

    back = _sync(standin, repo, clock, opts)

    assert back["processed"] == 0  # A's own checkpoint: only changes since A's last run
    assert "modifiedsince" in standin.requests[0]["params"]
    feeds = {doc["feed"]["url"] for doc in repo.state.find({"mode": "incremental"})}
    assert feeds == {standin.url, other.url}


def test_another_country_set_is_another_feed(standin, repo, clock, opts):
    _sync(standin, repo, clock, opts)
    clock.advance(hours=6)
    standin.requests.clear()

    germany = _sync(standin, repo, clock, opts, countries=("DE",))

    assert germany["processed"] == 43 and germany["updated"] == 0 and germany["inserted"] == 0
    assert "modifiedsince" not in standin.requests[0]["params"]
    assert standin.requests[0]["params"]["countrycode"] == "DE"


def test_an_unfinished_run_is_not_resumed_against_another_feed(standin, start_feed, repo, clock, opts):
    stopped = _sync(standin, repo, clock, opts, max_pages=1)
    other = start_feed(synthetic=600)

    switched = _sync(other, repo, clock, opts)

    assert stopped["complete"] is False
    assert other.requests[0]["params"]["greaterthanid"] == "0"  # not A's cursor
    assert switched["processed"] == 600
    resumed = _sync(standin, repo, clock, opts)
    assert resumed["processed"] == 1586 - 500  # A's run continues where A stopped
