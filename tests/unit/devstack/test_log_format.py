"""The pretty format: each kind of JSON line the stack writes becomes one short line; other lines pass through."""

from __future__ import annotations

import json

from devstack.log_format import render_line


def line(**record) -> str:
    return json.dumps(record)


def test_a_pump_line_shows_queue_outcome_and_type():
    out = render_line(line(ts="2026-02-21T14:31:00.123+00:00", pump="billing", function="billing_consumer",
                           messageId="0123456789abcdef", detailType="SESSION_ENDED", receiveCount=1,
                           outcome="dead-lettered"))
    assert out.startswith("14:31:00.123 pump billing")
    assert "dead-lettered" in out and "SESSION_ENDED" in out and "messageId=01234567 " in out + " "
    assert "\n" not in out and "{" not in out


def test_a_bus_line_shows_type_source_and_ids():
    out = render_line(line(ts="2026-02-21T14:31:00.000+00:00", bus="INVOICE_GENERATED", source="jucr.billing",
                           busEventId="abcdef0123", eventId="e-1", invoiceId="i-1", userId="u-1"))
    assert out.split()[1:4] == ["bus", "INVOICE_GENERATED", "jucr.billing"]
    assert "invoiceId=i-1" in out and "userId=u-1" in out and "eventId=e-1" in out


def test_a_powertools_record_keeps_level_message_and_its_own_keys():
    out = render_line(line(level="INFO", location="report:80", message="session billed",
                           timestamp="2026-02-21T14:31:00.500Z", service="jucr", cold_start=False,
                           sessionId="s-1", payment="COMPLETED"))
    assert out == "14:31:00.500 INFO  session billed  sessionId=s-1 payment=COMPLETED"


def test_metrics_show_names_and_dimensions():
    record = {"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "JUCR", "Dimensions": [["queue", "service"]],
                                                              "Metrics": [{"Name": "RecordsSucceeded"}]}]},
              "queue": "billing", "service": "jucr", "RecordsSucceeded": [1.0]}
    assert render_line(json.dumps(record)).endswith("metric queue=billing RecordsSucceeded=1.0")


def test_text_and_broken_json_pass_through():
    assert render_line("[devstack] ready. Ctrl-C stops everything.\n") == "[devstack] ready. Ctrl-C stops everything."
    assert render_line("{not json") == "{not json"


def test_threads_printing_at_once_never_share_a_line():
    import io
    import threading

    from devstack.log_format import WholeLines

    sink = io.StringIO()
    out = WholeLines(sink)

    def say(tag: str) -> None:
        for _ in range(200):
            print("x" * 50, tag, file=out)

    threads = [threading.Thread(target=say, args=(t,)) for t in "ab"]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(set(sink.getvalue().splitlines())) == ["x" * 50 + " a", "x" * 50 + " b"]
