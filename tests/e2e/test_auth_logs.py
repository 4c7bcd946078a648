"""The auth flows leave no email, name, password, token or vehicle in the stack's logs."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.e2e

USER = "user { id email name vehicle { brand model batteryCapacity } }"
REGISTER = f"mutation R($input: RegisterInput!) {{ register(input: $input) {{ accessToken refreshToken {USER} }} }}"
LOGIN = f"mutation L($input: LoginInput!) {{ login(input: $input) {{ accessToken refreshToken {USER} }} }}"
REFRESH = f"mutation F($token: String!) {{ refreshToken(token: $token) {{ accessToken refreshToken {USER} }} }}"
ME = "query { me { id email name } }"


def test_auth_flows_log_no_personal_data_or_secrets(local_stack):
    tag = uuid.uuid4().hex[:12]
    payload = {"email": f"logcheck.{tag}@example.com", "name": f"Lognamé {tag}", "password": f"pw-secret-{tag}",
               "vehicle": {"brand": f"Brand{tag}", "model": f"Model{tag}", "batteryCapacity": 77.7}}
    offset = len(local_stack.logs())
    registered = local_stack.graphql(REGISTER, {"input": payload})[1]["data"]["register"]
    local_stack.graphql(REGISTER, {"input": payload})  # conflict
    local_stack.graphql(REGISTER, {"input": {**payload, "email": f"bad-{tag}", "password": "x"}})  # validation
    logged = local_stack.graphql(LOGIN, {"input": {"email": payload["email"], "password": payload["password"]}})
    tokens = [registered["accessToken"], registered["refreshToken"], logged[1]["data"]["login"]["accessToken"]]
    local_stack.graphql(LOGIN, {"input": {"email": payload["email"], "password": f"wrong-{tag}-pw"}})
    local_stack.graphql(ME, token=registered["accessToken"])
    local_stack.graphql(ME, token=f"garbage-{tag}")
    rotated = local_stack.graphql(REFRESH, {"token": registered["refreshToken"]})[1]["data"]["refreshToken"]
    local_stack.graphql(REFRESH, {"token": registered["refreshToken"]})  # reuse
    tokens += [rotated["accessToken"], rotated["refreshToken"]]

    user_id = registered["user"]["id"]
    logs = local_stack.wait_for(lambda: (lambda text: text if user_id in text else None)(local_stack.logs()[offset:]),
                                timeout=15)
    assert "user registered" in logs  # the flows did log, by user id
    secrets = {
        "email": payload["email"], "email local part": f"logcheck.{tag}", "name": payload["name"],
        "password": payload["password"], "wrong password": f"wrong-{tag}-pw", "brand": payload["vehicle"]["brand"],
        "model": payload["vehicle"]["model"], "bad email": f"bad-{tag}", "garbage token": f"garbage-{tag}",
    }
    secrets.update({f"token {i}": token for i, token in enumerate(tokens)})
    secrets.update({f"token {i} signature": token.rsplit(".", 1)[-1] for i, token in enumerate(tokens) if "." in token})
    found = [label for label, value in secrets.items() if value in logs]
    assert found == [], found
