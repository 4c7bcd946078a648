"""The operator's way to correct an invoice: ``credit-note``, on the embedded store and moto."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest

from chalicelib import bootstrap, cli_exits
from chalicelib.__main__ import main as cli_main
from chalicelib.billing import service
from chalicelib.billing.cli import default_key
from chalicelib.billing.entry import billing_deps
from tests.integration.billing.sessions import open_wallet, session


@pytest.fixture
def billed(aws, db, monkeypatch):
    """A paid invoice of 10.40 from a wallet opened with 50.00."""
    monkeypatch.setenv("JUCR_NO_LOCAL_STACK", "1")
    monkeypatch.setenv("WALLET_OPENING_BALANCE", "50")
    bootstrap.reset()
    deps = billing_deps()
    open_wallet(deps)
    ended = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat(timespec="seconds").replace("+00:00", "Z")
    outcome = service.bill_session(deps, session(endedAt=ended))
    assert outcome["status"] == "PAID"
    return outcome["invoiceId"]


def _run(capsys, *args: str) -> tuple[int, dict]:
    code = cli_main(["credit-note", *args])
    out, err = capsys.readouterr()
    return code, json.loads((out or err).strip().splitlines()[-1])


def test_a_credit_note_refunds_the_wallet_once_however_often_it_is_issued(billed, db, capsys):
    args = (billed, "--amount", "2.00", "--reason", "meter fault at the station")
    code, note = _run(capsys, *args)
    assert code == cli_exits.OK
    assert (note["invoiceId"], note["total"], note["number"][:3]) == (billed, "-2.00", "CN-")
    assert _run(capsys, *args) == (cli_exits.OK, note), "a retried command issues no second note"
    assert db.credit_notes.count_documents({}) == 1
    assert db.wallets.find_one({})["balanceCents"] == 5000 - 1040 + 200


def test_the_same_amount_written_differently_issues_one_note(billed, db, capsys):
    code, note = _run(capsys, billed, "--amount", "2", "--reason", "meter fault")
    assert code == cli_exits.OK
    for written in ("2.00", "2.0"):
        assert _run(capsys, billed, "--amount", written, "--reason", "meter fault") == (cli_exits.OK, note)
    assert db.credit_notes.count_documents({}) == 1
    assert db.wallets.find_one({})["balanceCents"] == 5000 - 1040 + 200
    assert default_key(Decimal("2"), "r") == default_key(Decimal("2.00"), "r") != default_key(Decimal("2.01"), "r")


def test_more_than_is_left_and_unknown_invoices_are_refused(billed, db, capsys):
    assert _run(capsys, billed, "--amount", "10.00", "--reason", "first")[0] == cli_exits.OK
    code, error = _run(capsys, billed, "--amount", "0.50", "--reason", "second")
    assert (code, error["error"]) == (cli_exits.BAD_INPUT, "ValidationError")
    code, error = _run(capsys, str(uuid.uuid4()), "--amount", "1.00", "--reason", "typo")
    assert (code, error["error"]) == (cli_exits.NOT_FOUND, "NotFound")
    assert db.credit_notes.count_documents({}) == 1


@pytest.mark.parametrize("amount", ["0", "-1", "1.234", "NaN", "lots"])
def test_an_amount_that_is_not_money_is_refused_before_anything_runs(billed, db, capsys, amount):
    with pytest.raises(SystemExit) as exited:
        cli_main(["credit-note", billed, "--amount", amount, "--reason", "x"])
    assert exited.value.code == cli_exits.BAD_INPUT
    assert "amount" in capsys.readouterr().err
    assert db.credit_notes.count_documents({}) == 0
