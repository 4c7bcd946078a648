"""The API's AWS WAF web ACL (wafv2, scope REGIONAL): rate-based rules per client address.

WAF sees the address the request came from (not a header the client writes) and counts
requests, so it caps how fast one address can call the API at all, and sign-in calls
in particular, before AppSync or a Lambda does any work. It cannot see inside a request:
1,000 aliased ``login`` calls are one request, which is what AppSync's resolver count
limit is for (``appsync/limits.py``); the sign-in throttle (``chalicelib/auth/throttle.py``)
is what keeps guessing slow per email. Over the limit, WAF answers 429 until the address
slows down.

The ACL is found by name (``<app>-<stage>-api``; names are unique per scope and region)
and must carry our tag: one that is not ours is refused, never adopted or deleted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from appsync.drift import same
from appsync.infra import Changes
from appsync.limits import WAF_LOGIN_RATE_LIMIT, WAF_RATE_LIMIT, WAF_WINDOW_SECONDS

SCOPE = "REGIONAL"
# A new ACL can take a while to reach every WAF endpoint; associating before then is refused.
ASSOCIATE_ATTEMPTS = 6
# The GraphQL text names the field it calls; JS_DECODE undoes \u escapes in the JSON body first.
LOGIN_IN_BODY = {"ByteMatchStatement": {
    "SearchString": b"login", "PositionalConstraint": "CONTAINS",
    "FieldToMatch": {"Body": {"OversizeHandling": "MATCH"}},  # a body too big to inspect counts as a sign-in
    "TextTransformations": [{"Priority": 0, "Type": "JS_DECODE"}, {"Priority": 1, "Type": "LOWERCASE"}],
}}


def _visibility(metric: str) -> dict[str, Any]:
    return {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": metric}


def _rate_rule(name: str, priority: int, limit: int, metric: str, scope_down: dict | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Limit": limit, "EvaluationWindowSec": WAF_WINDOW_SECONDS, "AggregateKeyType": "IP"}
    if scope_down is not None:
        statement["ScopeDownStatement"] = scope_down
    return {"Name": name, "Priority": priority, "Statement": {"RateBasedStatement": statement},
            "Action": {"Block": {"CustomResponse": {"ResponseCode": 429}}}, "VisibilityConfig": _visibility(metric)}


def desired_web_acl(name: str) -> dict[str, Any]:
    """What ``create_web_acl`` / ``update_web_acl`` set and ``get_web_acl`` must echo back."""
    return {
        "DefaultAction": {"Allow": {}},
        "Rules": [
            _rate_rule("sign-in-rate-per-ip", 0, WAF_LOGIN_RATE_LIMIT, f"{name}-sign-in-rate", LOGIN_IN_BODY),
            _rate_rule("rate-per-ip", 1, WAF_RATE_LIMIT, f"{name}-rate"),
        ],
        "VisibilityConfig": _visibility(name),
    }


class WebAcl:
    """Provisioner for the web ACL and its association with the GraphQL API."""

    def __init__(self, wafv2: Any, name: str, tags: Mapping[str, str], changes: Changes,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.wafv2, self.name, self.tags, self.changes, self.sleep = wafv2, name, dict(tags), changes, sleep

    def find(self) -> dict[str, Any] | None:
        """The summary (``Name``, ``Id``, ``ARN``) of the ACL with our name, whoever made it."""
        marker: dict[str, str] = {}
        while True:
            page = self.wafv2.list_web_acls(Scope=SCOPE, **marker)
            found = next((acl for acl in page.get("WebACLs", []) if acl["Name"] == self.name), None)
            if found is not None or not page.get("NextMarker") or not page.get("WebACLs"):
                return found
            marker = {"NextMarker": page["NextMarker"]}

    def _ours(self, arn: str) -> bool:
        tags = self.wafv2.list_tags_for_resource(ResourceARN=arn).get("TagInfoForResource", {}).get("TagList", [])
        return all({"Key": k, "Value": v} in tags for k, v in self.tags.items())

    def ensure(self) -> str:
        """Create or update the ACL; its ARN."""
        desired = desired_web_acl(self.name)
        found = self.find()
        if found is not None and not self._ours(found["ARN"]):
            raise RuntimeError(f"web ACL {self.name} exists but was not made by this step; rename or remove it")
        if found is None:
            made = self.wafv2.create_web_acl(Name=self.name, Scope=SCOPE, **desired,
                                             Tags=[{"Key": k, "Value": v} for k, v in self.tags.items()])
            self.changes.record("created", "waf web acl", self.name)
            return made["Summary"]["ARN"]
        current = self.wafv2.get_web_acl(Name=self.name, Scope=SCOPE, Id=found["Id"])
        if same(current["WebACL"], desired):
            self.changes.record("unchanged", "waf web acl", self.name)
        else:
            self.wafv2.update_web_acl(Name=self.name, Scope=SCOPE, Id=found["Id"], LockToken=current["LockToken"],
                                      **desired)
            self.changes.record("updated", "waf web acl", self.name)
        return found["ARN"]

    def ensure_association(self, acl_arn: str, api: Mapping[str, Any]) -> None:
        """The API is protected by our ACL (another one associated is replaced)."""
        label = f"{self.name} -> {api['apiId']}"
        current = (self.wafv2.get_web_acl_for_resource(ResourceArn=api["arn"]).get("WebACL") or {}).get("ARN")
        if current == acl_arn:
            self.changes.record("unchanged", "waf association", label)
            return
        if current is not None:
            self.wafv2.disassociate_web_acl(ResourceArn=api["arn"])
        for attempt in range(ASSOCIATE_ATTEMPTS):
            try:
                self.wafv2.associate_web_acl(WebACLArn=acl_arn, ResourceArn=api["arn"])
                break
            except self.wafv2.exceptions.WAFUnavailableEntityException:
                if attempt == ASSOCIATE_ATTEMPTS - 1:
                    raise
                self.sleep(min(2 ** attempt * 5, 60))
        self.changes.record("created" if current is None else "updated", "waf association", label)

    def teardown(self, api: Mapping[str, Any] | None) -> None:
        """Disassociate (before the API goes) and delete the ACL, if it is ours."""
        found = self.find()
        if found is None or not self._ours(found["ARN"]):
            return  # none, or the same name and not ours: leave it
        if api is not None:
            current = (self.wafv2.get_web_acl_for_resource(ResourceArn=api["arn"]).get("WebACL") or {}).get("ARN")
            if current == found["ARN"]:
                self.wafv2.disassociate_web_acl(ResourceArn=api["arn"])
                self.changes.record("deleted", "waf association", f"{self.name} -> {api['apiId']}")
        lock = self.wafv2.get_web_acl(Name=self.name, Scope=SCOPE, Id=found["Id"])["LockToken"]
        self.wafv2.delete_web_acl(Name=self.name, Scope=SCOPE, Id=found["Id"], LockToken=lock)
        self.changes.record("deleted", "waf web acl", self.name)
