"""``ocm-sync`` flags: values that used to mean something surprising are refused by argparse."""

from __future__ import annotations

import argparse
import json

import pytest

from chalicelib.ocm import cli


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jucr")
    cli.register(parser.add_subparsers(dest="command"))
    return parser


@pytest.mark.parametrize("argv", [
    ["--max-pages", "0"], ["--max-pages", "-3"], ["--max-pages", "two"],
    ["--time-budget", "0"], ["--time-budget", "-1"], ["--time-budget", "nan"], ["--time-budget", "inf"],
    ["--time-budget", "soon"],
])
def test_non_positive_or_non_finite_limits_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        _parser().parse_args(["ocm-sync", *argv])
    assert exit_.value.code == 2
    assert "expected" in capsys.readouterr().err


def test_positive_limits_and_the_removal_override_parse():
    args = _parser().parse_args(["ocm-sync", "--full", "--max-pages", "2", "--time-budget", "0.5",
                                 "--allow-mass-removal"])
    assert (args.max_pages, args.time_budget, args.full, args.allow_mass_removal) == (2, 0.5, True, True)
    defaults = _parser().parse_args(["ocm-sync"])
    assert (defaults.max_pages, defaults.time_budget, defaults.allow_mass_removal) == (None, None, False)


def test_a_client_that_cannot_be_built_is_a_clean_exit_5(monkeypatch, capsys):
    from chalicelib.ocm import entry
    from chalicelib.ocm.client import OcmError

    def no_client(settings):
        raise OcmError("OCM_API_URL is not reachable")

    monkeypatch.setattr(entry, "client", no_client)
    code = cli.run(_parser().parse_args(["ocm-sync"]))
    assert code == 5
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {
        "error": "OcmError", "message": "OCM_API_URL is not reachable"}
