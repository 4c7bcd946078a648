"""Register, login, its throttle, refresh rotation, me and revocation against the in-memory twin."""

from __future__ import annotations

import json
import threading

import pytest

from chalicelib.auth import service, throttle
from chalicelib.auth.keys import KeyRing
from chalicelib.auth.tokens import hash_refresh_token, verify_access_token
from chalicelib.contracts.errors import Conflict, TooManyAttempts, Unauthorized
from chalicelib.contracts.events import USER_REGISTERED, derived_event_id
from tests.concurrency import run_concurrently

LOGIN = {"email": "driver@example.com", "password": "correct horse battery"}


def test_register_stores_user_issues_tokens_and_publishes(deps, repo, publisher, clock, keys, seed):
    out = service.register(deps, seed())
    user_id = out["user"]["id"]
    assert out["user"] == {"id": user_id, "email": "driver@example.com", "name": "Dana Driver",
                           "vehicle": {"brand": "Volkswagen", "model": "ID.3", "batteryCapacity": 58.0}}
    assert out["expiresIn"] == 900
    claims = verify_access_token(out["accessToken"], keys, issuer="https://auth.test", audience="jucr-test",
                                 now=clock())
    assert claims.user_id == user_id and claims.token_version == 0
    stored = repo.users[user_id]
    assert stored["passwordHash"].startswith("bcrypt-sha256$$2b$04$")
    assert "correct horse battery" not in json.dumps(stored, default=str)
    assert stored["registrationPublished"] is True
    [event] = publisher.of_type(USER_REGISTERED)
    assert event["userId"] == user_id and event["registeredAt"] == "2026-02-21T14:00:00Z"
    assert event["eventId"] == derived_event_id(USER_REGISTERED, user_id)
    text = json.dumps(event)
    assert "driver@example.com" not in text and "bcrypt" not in text and "Dana" not in text


def test_duplicate_email_any_case_is_a_conflict_that_reveals_nothing(deps, repo, publisher, seed):
    service.register(deps, seed())
    with pytest.raises(Conflict) as caught:
        service.register(deps, seed(email=" DRIVER@example.com", name="Someone Else"))
    assert "driver@example.com" not in caught.value.message.lower()
    assert len(repo.users) == 1 and len(publisher.published) == 1


def test_publish_failure_keeps_the_user_and_retries_at_next_login(deps, repo, publisher, seed):
    publisher.fail_next = 1
    out = service.register(deps, seed())
    user_id = out["user"]["id"]
    assert repo.users[user_id]["registrationPublished"] is False and publisher.published == []
    service.login(deps, LOGIN)
    [event] = publisher.of_type(USER_REGISTERED)
    assert event["eventId"] == derived_event_id(USER_REGISTERED, user_id)
    assert repo.users[user_id]["registrationPublished"] is True
    service.login(deps, LOGIN)
    assert len(publisher.published) == 1  # not again once delivered


def test_login_returns_tokens_for_the_right_password(deps, seed):
    registered = service.register(deps, seed())
    out = service.login(deps, {"email": "  DRIVER@example.com", "password": "correct horse battery"})
    assert out["user"] == registered["user"]
    assert out["refreshToken"] != registered["refreshToken"]


def test_unknown_email_and_wrong_password_give_the_same_error(deps, seed):
    service.register(deps, seed())
    with pytest.raises(Unauthorized) as wrong:
        service.login(deps, {"email": "driver@example.com", "password": "wrong password!"})
    with pytest.raises(Unauthorized) as unknown:
        service.login(deps, {"email": "nobody@example.com", "password": "wrong password!"})
    assert wrong.value.message == unknown.value.message == service.BAD_CREDENTIALS


def test_unknown_email_costs_a_bcrypt_check_like_a_wrong_password(deps, repo, seed, monkeypatch):
    """The time equality comes from running the same bcrypt check; assert that, not a wall-clock ratio."""
    service.register(deps, seed())
    checked: list[str] = []
    real_verify = service.verify_password
    monkeypatch.setattr(service, "verify_password",
                        lambda pw, stored: checked.append(stored) or real_verify(pw, stored))

    for email in ("driver@example.com", "nobody@example.com"):
        with pytest.raises(Unauthorized):
            service.login(deps, {"email": email, "password": "wrong password!"})
    [user] = repo.users.values()
    dummy = service.dummy_hash(deps.policy.bcrypt_cost)
    assert checked == [user["passwordHash"], dummy]
    assert dummy.startswith("bcrypt-sha256$$2b$04$")  # same scheme and cost as a real hash
    assert dummy != user["passwordHash"]


BAD = {"email": "driver@example.com", "password": "wrong password!"}


def _fail(deps, times: int, attempt=BAD) -> None:
    for _ in range(times):
        with pytest.raises(Unauthorized):
            service.login(deps, attempt)


def test_failures_past_the_free_ones_delay_the_next_attempt_and_the_right_password_then_signs_in(deps, clock, seed):
    service.register(deps, seed())
    _fail(deps, 3)  # LOGIN_FREE_FAILURES=3: each one checked and refused as usual
    with pytest.raises(TooManyAttempts) as delayed:
        service.login(deps, LOGIN)  # even the right password waits LOGIN_DELAY_BASE_SECONDS
    assert delayed.value.details == {"retryAfterSeconds": 10}
    assert "Try again in 10 second(s)" in delayed.value.message
    clock.advance(10)
    assert service.login(deps, LOGIN)["user"]["email"] == "driver@example.com"


def test_the_delay_doubles_per_failure_up_to_the_cap(deps, clock, seed):
    service.register(deps, seed())
    _fail(deps, 3)
    waits = []
    for _ in range(6):
        with pytest.raises(TooManyAttempts) as delayed:
            service.login(deps, BAD)
        waits.append(delayed.value.details["retryAfterSeconds"])
        clock.advance(waits[-1])
        _fail(deps, 1)
    assert waits == [10, 20, 40, 80, 100, 100]  # capped at LOGIN_DELAY_CAP_SECONDS


def test_success_resets_the_failure_count(deps, seed):
    service.register(deps, seed())
    _fail(deps, 2)
    service.login(deps, LOGIN)
    _fail(deps, 3)  # three free failures again, not one


def test_failures_are_forgotten_a_day_after_the_last(deps, clock, seed):
    service.register(deps, seed())
    _fail(deps, 3)
    clock.advance(throttle.FAILURE_MEMORY_SECONDS)
    _fail(deps, 3)
    with pytest.raises(TooManyAttempts):
        service.login(deps, BAD)


def test_refused_attempts_do_not_push_the_delay_on_and_run_no_bcrypt(deps, clock, seed, monkeypatch):
    service.register(deps, seed())
    _fail(deps, 3)
    checks: list[str] = []
    monkeypatch.setattr(service, "verify_password", lambda pw, stored: checks.append(stored) or False)
    for elapsed in range(9):  # 9 s into the 10 s delay, one refused attempt a second
        with pytest.raises(TooManyAttempts) as delayed:
            service.login(deps, LOGIN)
        assert delayed.value.details == {"retryAfterSeconds": 10 - elapsed}
        clock.advance(1)
    assert checks == []
    monkeypatch.undo()
    clock.advance(1)
    assert service.login(deps, LOGIN)["accessToken"]


def test_unknown_emails_are_delayed_too_so_a_delay_reveals_no_account(deps):
    ghost = {"email": "ghost@example.com", "password": "wrong password!"}
    _fail(deps, 3, ghost)
    with pytest.raises(TooManyAttempts):
        service.login(deps, ghost)


def test_refresh_rotates_and_the_old_token_stops_working(deps, repo, seed):
    first = service.register(deps, seed())
    second = service.refresh(deps, {"token": first["refreshToken"]})
    assert second["refreshToken"] != first["refreshToken"]
    assert second["user"]["id"] == first["user"]["id"]
    third = service.refresh(deps, {"token": second["refreshToken"]})
    assert third["accessToken"]
    assert all(raw not in repo.refresh for raw in (first["refreshToken"], second["refreshToken"]))
    assert hash_refresh_token(third["refreshToken"]) in repo.refresh  # stored hashed only


def test_reusing_a_rotated_token_revokes_the_whole_family(deps, seed):
    first = service.register(deps, seed())
    second = service.refresh(deps, {"token": first["refreshToken"]})
    with pytest.raises(Unauthorized):
        service.refresh(deps, {"token": first["refreshToken"]})  # replay of a spent token
    with pytest.raises(Unauthorized):
        service.refresh(deps, {"token": second["refreshToken"]})  # the family is gone


def test_other_sessions_survive_a_family_revocation(deps, seed):
    web = service.register(deps, seed())
    phone = service.login(deps, LOGIN)
    service.refresh(deps, {"token": web["refreshToken"]})
    with pytest.raises(Unauthorized):
        service.refresh(deps, {"token": web["refreshToken"]})
    assert service.refresh(deps, {"token": phone["refreshToken"]})["accessToken"]


def test_unknown_and_expired_refresh_tokens_are_refused(deps, clock, seed):
    out = service.register(deps, seed())
    with pytest.raises(Unauthorized):
        service.refresh(deps, {"token": "not-a-token"})
    clock.advance(86400 + 1)
    with pytest.raises(Unauthorized):
        service.refresh(deps, {"token": out["refreshToken"]})


def test_an_expired_token_is_not_spent_and_revokes_nothing(deps, repo, clock, seed):
    out = service.register(deps, seed())
    clock.advance(86400)
    for _ in range(2):
        with pytest.raises(Unauthorized):
            service.refresh(deps, {"token": out["refreshToken"]})
    assert repo.refresh[hash_refresh_token(out["refreshToken"])]["usedAt"] is None
    assert all(family["revokedAt"] is None for family in repo.families.values())


def test_rotation_moves_the_family_expiry_to_its_newest_token(deps, repo, clock, seed):
    first = service.register(deps, seed())
    clock.advance(3600)
    second = service.refresh(deps, {"token": first["refreshToken"]})
    [family] = repo.families.values()
    assert family["expiresAt"] == repo.refresh[hash_refresh_token(second["refreshToken"])]["expiresAt"]


def test_parallel_refreshes_with_one_token_issue_at_most_one_and_revoke_the_family(deps, repo, seed):
    token = service.register(deps, seed())["refreshToken"]
    issued: list[str] = []
    barrier = threading.Barrier(6)

    def use() -> None:
        barrier.wait()
        try:
            issued.append(service.refresh(deps, {"token": token})["refreshToken"])
        except Unauthorized:
            pass

    run_concurrently(*[use] * 6)
    assert len(issued) <= 1  # none when a loser's revocation lands before the winner renews the family
    assert sum(t["usedAt"] is not None for t in repo.refresh.values()) == 1
    for new_token in issued:  # the losers presented a spent token: the family is revoked
        with pytest.raises(Unauthorized):
            service.refresh(deps, {"token": new_token})


def test_me_returns_the_profile_of_the_authorizer_user_only(deps, seed):
    out = service.register(deps, seed())
    assert service.me(deps, out["user"]["id"], "0") == out["user"]
    for bad in (None, "", 5, "00000000-0000-0000-0000-000000000000"):
        with pytest.raises(Unauthorized):
            service.me(deps, bad)


def test_revoking_a_user_refuses_refresh_and_me_and_allows_a_new_sign_in(deps, seed):
    out = service.register(deps, seed())
    user_id = out["user"]["id"]
    assert service.revoke_user(deps, user_id) == 1
    with pytest.raises(Unauthorized):
        service.refresh(deps, {"token": out["refreshToken"]})
    with pytest.raises(Unauthorized):
        service.me(deps, user_id, "0")
    again = service.login(deps, LOGIN)
    assert service.me(deps, user_id, "1")["id"] == user_id
    assert service.refresh(deps, {"token": again["refreshToken"]})["user"]["id"] == user_id


def test_a_resolver_lambda_without_the_private_key_cannot_issue(deps, seed, keys):
    from dataclasses import replace

    from chalicelib.config import ConfigError

    public_only = replace(deps, keys=KeyRing.from_pem(public_pem=keys.public_pem()))
    with pytest.raises(ConfigError):
        service.register(public_only, seed())


def test_parallel_wrong_guesses_get_no_more_bcrypt_checks_than_the_free_failures(deps, repo, seed, monkeypatch):
    """The attempt is counted before bcrypt: 8 racing guesses with 3 free failures get 3 password checks."""
    service.register(deps, seed())
    checks: list[str] = []
    real_verify = service.verify_password
    barrier = threading.Barrier(8)
    monkeypatch.setattr(service, "verify_password", lambda pw, stored: checks.append(stored) or real_verify(pw, stored))
    outcomes: list[str] = []

    def guess() -> None:
        barrier.wait()
        try:
            service.login(deps, {"email": "driver@example.com", "password": "wrong password!"})
            outcomes.append("ok")
        except (Unauthorized, TooManyAttempts) as exc:
            outcomes.append(type(exc).__name__)

    run_concurrently(*[guess] * 8)
    assert len(checks) == deps.policy.throttle.free_failures == 3
    assert sorted(outcomes) == ["TooManyAttempts"] * 5 + ["Unauthorized"] * 3
    with pytest.raises(TooManyAttempts):
        service.login(deps, LOGIN)
