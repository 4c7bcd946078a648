"""The stand-in's synthetic feed: real-size data built from the fixture, paged like the real API."""

from __future__ import annotations

import datetime as dt

from chalicelib.ocm.mapping import map_record

API_KEY = "test-key-123"


def _page(client, after: int, size: int, since: dt.datetime | None = None) -> list[dict]:
    return client.fetch_page(after_id=after, page_size=size, modified_since=since)


def test_synthetic_records_are_renumbered_fixture_records_that_map_cleanly(start_feed, fixture_records_master,
                                                                          make_client_for):
    feed = start_feed(synthetic=3500)
    client = make_client_for(feed)
    records, after = [], 0
    while page := _page(client, after, 1000):
        records += page
        after = page[-1]["ID"]
    client.close()

    assert [r["ID"] for r in records] == list(range(1, 3501))
    assert feed.request_count == 4 + 1  # 3 full pages, one of 500, then the empty answer
    templates = sorted(fixture_records_master, key=lambda r: r["ID"])
    first, again = records[0], records[len(templates)]  # the same template, one pass later
    assert first["Connections"] == templates[0]["Connections"] == again["Connections"]
    assert again["AddressInfo"]["Latitude"] == templates[0]["AddressInfo"]["Latitude"] + 0.001
    assert len({r["UUID"] for r in records}) == 3500
    assert all(map_record(r).ocm_id == r["ID"] for r in records)


def test_synthetic_feed_is_the_same_in_every_stand_in(start_feed):
    one, two = start_feed(synthetic=2000), start_feed(synthetic=2000)
    assert one.select({"sortby": "id_asc", "greaterthanid": "1500", "maxresults": "50"}) == \
        two.select({"sortby": "id_asc", "greaterthanid": "1500", "maxresults": "50"})


def test_changes_and_delistings_show_in_the_synthetic_feed(start_feed, make_client_for):
    feed = start_feed(synthetic=5000)
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    for ocm_id in (10, 2500, 4999):
        feed.change(ocm_id, StatusTypeID=100)
    feed.delist(2500)
    feed.delist(7)
    client = make_client_for(feed)

    changed = _page(client, 0, 1000, since=before)
    everything = _page(client, 0, 10)

    assert [r["ID"] for r in changed] == [10, 4999] and all(r["StatusTypeID"] == 100 for r in changed)
    assert [r["ID"] for r in everything] == [1, 2, 3, 4, 5, 6, 8, 9, 10, 11]
    assert len(feed.ids()) == 4998
    client.close()


def test_country_filter_and_other_orders_on_the_synthetic_feed(start_feed):
    feed = start_feed(synthetic=3172)  # exactly two passes over the fixture
    german = feed.select({"sortby": "id_asc", "countrycode": "DE", "maxresults": "10000"})
    newest_first = feed.select({"maxresults": "3"})

    assert len(german) == 2 * 43
    assert [r["ID"] for r in newest_first] == [3172, 3171, 3170]
