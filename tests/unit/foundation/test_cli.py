"""The operator CLI answers bad input and unreachable services with JSON, never a stack trace."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MONGODB_", "JUCR_", "OCM_"))}
    base.update({"JUCR_NO_LOCAL_STACK": "1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
                 "AWS_DEFAULT_REGION": "eu-central-1"}, **env)
    return subprocess.run([sys.executable, "-m", "chalicelib", *args], cwd=ROOT, env=base, capture_output=True,
                          text=True, timeout=120)


def test_unreachable_store_is_a_json_error_with_exit_5():
    result = _cli("indexes", MONGODB_URI="mongodb://user:pw@127.0.0.1:9/", MONGODB_TIMEOUT_MS="200")
    assert result.returncode == 5
    error = json.loads(result.stderr.strip().splitlines()[-1])
    assert error["error"] == "TransientStoreError"
    assert "Traceback" not in result.stderr and "pw@" not in result.stderr


def test_unreachable_aws_is_a_json_error_with_exit_5():
    result = _cli("dlq", "list", "--queue", "billing-dlq", AWS_ENDPOINT_URL="http://127.0.0.1:9",
                  MONGODB_URI="mongodb://127.0.0.1:9/", MONGODB_TIMEOUT_MS="200")
    assert result.returncode == 5, result.stderr
    assert json.loads(result.stderr.strip().splitlines()[-1])["error"] in {"EndpointConnectionError",
                                                                           "TransientStoreError"}
    assert "Traceback" not in result.stderr


def test_invalid_setting_stops_the_cli_naming_the_variable():
    result = _cli("settings", OCM_PAGE_SIZE="5")
    assert result.returncode == 2
    assert "OCM_PAGE_SIZE" in json.loads(result.stderr)["message"]
