"""The IAM roles the deploy step owns: made with our tag, policy kept current, deleted only if ours."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from appsync.infra import Changes

POLICY_NAME = "jucr-deploy"


def ensure_role(iam: Any, name: str, service: str, policy: dict[str, Any], tags: Mapping[str, str],
                changes: Changes) -> str:
    """A role ``service`` may assume, with ``policy`` inline; its ARN."""
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}
    try:
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
        created = False
    except iam.exceptions.NoSuchEntityException:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust),
                              Tags=[{"Key": k, "Value": v} for k, v in tags.items()])["Role"]["Arn"]
        created = True
    try:
        current = iam.get_role_policy(RoleName=name, PolicyName=POLICY_NAME)["PolicyDocument"]
        current = json.loads(current) if isinstance(current, str) else current
    except iam.exceptions.NoSuchEntityException:
        current = None
    if current != policy:
        iam.put_role_policy(RoleName=name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy))
    if created:
        changes.record("created", "iam role", name)
    else:
        changes.record("unchanged" if current == policy else "updated", "iam role", name)
    return arn


def delete_role(iam: Any, name: str, tag: tuple[str, str], changes: Changes) -> None:
    """Delete the role and its inline policies, only if it carries our ``tag`` (same name, not ours: kept)."""
    try:
        tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=name).get("Tags", [])}
    except iam.exceptions.NoSuchEntityException:
        return
    if tags.get(tag[0]) != tag[1]:
        return
    for policy in iam.list_role_policies(RoleName=name).get("PolicyNames", []):
        iam.delete_role_policy(RoleName=name, PolicyName=policy)
    iam.delete_role(RoleName=name)
    changes.record("deleted", "iam role", name)
