"""`chalice deploy --stage dev` then the deploy step, against a moto server on 127.0.0.1.

Proven against moto here: the real `chalice deploy` (Lambdas, per-function IAM
roles from our policy files, SQS event source mappings, schedule rules), and the
deploy step's bus, queues, redrive, queue policies, rules and targets (queue and
AppSync targets), ReportBatchItemFailures, schedule target retry policy + DLQ,
async invoke config, alarms + SNS, the AppSync API (auth modes, authorizer
config), the authorizer's invoke permission, API key, schema upload, IAM roles;
idempotency (second run: only "unchanged") and teardown.

moto 5.2.5 has no AppSync data source / resolver API (HTTP 404), so for those
six operations the appsync client is wrapped by ``FakeResolverStore`` below, a
dict-backed stand-in; their exact requests are asserted separately with
botocore's Stubber in tests/unit/deploy/test_deploy_appsync_stubbed.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from devstack.stack_process import start_moto
from tests.integration.deploy.resolver_store import FakeResolverStore

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.timeout(240)

STAGE = "dev"
FUNCTIONS = ("authorizer", "auth_resolver", "billing_resolver", "stations_resolver", "billing_consumer",
             "wallet_opener", "reconcile_billing_dlq", "reconcile_wallets_dlq", "reconcile_ocm_sync_dlq",
             "ocm_sync", "ocm_full_sweep")
SQS_CONSUMERS = {"billing_consumer": "billing", "wallet_opener": "wallets", "reconcile_billing_dlq": "billing-dlq",
                 "reconcile_wallets_dlq": "wallets-dlq", "reconcile_ocm_sync_dlq": "ocm-sync-dlq"}


@pytest.fixture(scope="module")
def moto_env(tmp_path_factory):
    moto = start_moto(tmp_path_factory.mktemp("moto") / "moto.log")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "JUCR_", "EVENT_BUS", "MONGODB_"))}
    env.update({"AWS_ENDPOINT_URL": moto.url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "eu-central-1", "PYTHONPATH": ""})
    yield env
    moto.stop()


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the app with an empty requirements.txt: packaging third-party wheels is not under test."""
    dest = tmp_path_factory.mktemp("proj") / "jucr"
    dest.mkdir()
    shutil.copy(ROOT / "app.py", dest / "app.py")
    for pkg in ("chalicelib", "appsync"):
        shutil.copytree(ROOT / pkg, dest / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / ".chalice", dest / ".chalice", ignore=shutil.ignore_patterns("deployed"))
    (dest / "requirements.txt").write_text("")
    return dest


def _sh(args: list[str], cwd: Path, env: dict) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def moto_clients(moto_env, project):
    """boto3 clients on the moto server, with the AppSync calls moto lacks served by FakeResolverStore."""
    from appsync import deploy

    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith(("AWS_", "JUCR_", "EVENT_BUS"))]:
            patch.delenv(key)
        for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
            patch.setenv(key, moto_env[key])
        settings = deploy.settings_for_stage(STAGE, project / ".chalice")
        real = deploy.boto_clients(settings)
        fake = FakeResolverStore(real("appsync"))

        def clients(name: str) -> Any:
            return fake if name == "appsync" else real(name)

        yield clients, settings, fake, patch


@pytest.fixture(scope="module")
def deployed(moto_env, project, moto_clients):
    """``--first`` on an empty account: infra (queues must exist), the real chalice deploy, then the full step."""
    from appsync import deploy

    clients, _settings, _fake, _patch = moto_clients
    lines: list[str] = []
    changes = deploy.first_deploy(STAGE, clients=clients, chalice_dir=project / ".chalice", echo=lines.append,
                                  chalice=lambda stage, cwd: deploy.run_chalice_deploy(stage, cwd, env=moto_env))
    return {"changes": changes, "lines": lines}


@pytest.fixture
def step(moto_env, project, deployed, moto_clients):
    """Run the deploy step in-process (so appsync can be wrapped), against the same moto server."""
    from appsync import deploy

    clients, settings, fake, _patch = moto_clients

    def run(**kw: Any):
        lines: list[str] = []
        changes = deploy.run(STAGE, clients=clients, chalice_dir=project / ".chalice", echo=lines.append, **kw)
        return changes, lines

    return run, clients, settings, fake


def _by_kind(changes) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for action, kind, name in changes.lines:
        out.setdefault(kind, {})[name] = action
    return out


def test_chalice_deploy_ran_against_moto_with_our_policy_files(deployed, moto_env, project):
    doc = json.loads((project / ".chalice" / "deployed" / f"{STAGE}.json").read_text())
    names = {r["name"] for r in doc["resources"] if r["resource_type"] == "lambda_function"}
    assert names == set(FUNCTIONS)
    iam = boto3.client("iam", endpoint_url=moto_env["AWS_ENDPOINT_URL"], region_name="eu-central-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    # autogen_policy false + iam_policy_file: one role per function carrying exactly our file.
    role = iam.get_role(RoleName=f"jucr-{STAGE}-billing_consumer")["Role"]["RoleName"]
    policy_names = iam.list_role_policies(RoleName=role)["PolicyNames"]
    documents = [iam.get_role_policy(RoleName=role, PolicyName=p)["PolicyDocument"] for p in policy_names]
    ours = json.loads((project / ".chalice" / f"policy-{STAGE}-billing_consumer.json").read_text())
    assert ours in documents


def test_first_deploy_runs_the_phases_in_order_and_creates_what_an_empty_account_lacks(deployed):
    lines = deployed["lines"]
    phases = [line for line in lines if line.startswith("phase ")]
    assert [p.split(":")[0] for p in phases] == ["phase 1/3", "phase 2/3", "phase 3/3"]
    infra = lines[lines.index(phases[0]) + 1:lines.index(phases[1])]
    assert "created   queue                  jucr-dev-billing" in infra
    wiring = lines[lines.index(phases[2]) + 1:]
    assert ("updated   event source mapping   billing_consumer <- jucr-dev-billing (ReportBatchItemFailures)"
            in wiring)
    assert "created   graphql api            jucr-dev" in wiring
    assert "created   resolver               Query.wallet" in wiring


def test_deploy_wires_everything_then_is_idempotent_then_tears_down(step, moto_env):
    run, clients, settings, fake = step
    first, lines = run()
    assert all(line.split()[0] in {"created", "updated", "unchanged"} for line in lines)
    _assert_consumers_report_batch_failures(clients)
    _assert_queues_and_rules(clients, settings)
    _assert_schedules_retry_into_their_dlq(clients)
    assert _by_kind(first)["sns topic"] == {"jucr-dev-alarms": "unchanged"}  # made by the --only infra run
    _assert_alarms(clients)
    _assert_appsync(clients, fake)
    _assert_bus_to_appsync(clients)

    second, second_lines = run()  # second run: nothing changes
    assert not second.changed, [line for line in second_lines if not line.startswith("unchanged")]
    assert len(second.lines) == len(first.lines)

    run(remove=True)
    _assert_torn_down(clients, fake)
    again, _ = run(remove=True)  # and a teardown of nothing is a no-op
    assert not again.lines


def _assert_consumers_report_batch_failures(clients) -> None:
    """ReportBatchItemFailures on every SQS mapping Chalice made."""
    lam = clients("lambda")
    for function, queue in SQS_CONSUMERS.items():
        arn = lam.get_function(FunctionName=f"jucr-{STAGE}-{function}")["Configuration"]["FunctionArn"]
        mappings = lam.list_event_source_mappings(FunctionName=arn)["EventSourceMappings"]
        assert len(mappings) == 1 and mappings[0]["EventSourceArn"].endswith(f":jucr-{STAGE}-{queue}")
        assert mappings[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def _assert_queues_and_rules(clients, settings) -> None:
    """Queues with redrive to their DLQ; bus rules -> queues with retry + DLQ."""
    sqs, events = clients("sqs"), clients("events")
    url = sqs.get_queue_url(QueueName="jucr-dev-billing")["QueueUrl"]
    redrive = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(":jucr-dev-billing-dlq")
    assert int(redrive["maxReceiveCount"]) == settings.queue.max_receive_count
    rule = events.describe_rule(Name="jucr-dev-to-billing", EventBusName="jucr-dev")
    assert json.loads(rule["EventPattern"]) == {"source": ["jucr.session"], "detail-type": ["SESSION_ENDED"]}
    target = events.list_targets_by_rule(Rule="jucr-dev-to-billing", EventBusName="jucr-dev")["Targets"][0]
    assert target["DeadLetterConfig"]["Arn"].endswith(":jucr-dev-billing-dlq")
    dlq_url = sqs.get_queue_url(QueueName="jucr-dev-billing-dlq")["QueueUrl"]
    dlq_policy = json.loads(sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["Policy"])["Attributes"]
                            ["Policy"])
    assert dlq_policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"] == [rule["Arn"]]


def _assert_schedules_retry_into_their_dlq(clients) -> None:
    """Schedule rules (Chalice's, default bus): retry policy + DLQ on the target; async invoke config."""
    events, lam = clients("events"), clients("lambda")
    for function in ("ocm_sync", "ocm_full_sweep"):
        schedule_target = events.list_targets_by_rule(Rule=f"jucr-{STAGE}-{function}-event")["Targets"][0]
        assert schedule_target["RetryPolicy"]["MaximumRetryAttempts"] == 4
        assert schedule_target["DeadLetterConfig"]["Arn"].endswith(":jucr-dev-ocm-sync-dlq")
        config = lam.get_function_event_invoke_config(FunctionName=f"jucr-{STAGE}-{function}")
        assert config["MaximumRetryAttempts"] == 2
        assert config["DestinationConfig"]["OnFailure"]["Destination"].endswith(":jucr-dev-ocm-sync-dlq")


def _assert_alarms(clients) -> None:
    """Alarms + SNS topic (appsync/alarms.py, called by the step)."""
    assert [t for t in clients("sns").list_topics()["Topics"] if t["TopicArn"].endswith(":jucr-dev-alarms")]
    alarms = clients("cloudwatch").describe_alarms(AlarmNamePrefix="jucr-dev-")["MetricAlarms"]
    assert any(a["AlarmName"] == "jucr-dev-billing-dlq-depth" for a in alarms)


def _assert_appsync(clients, fake) -> None:
    """Lambda authorizer by default, API key + IAM additional; permission; key; schema; limits; WAF."""
    lam, appsync = clients("lambda"), clients("appsync")
    api = next(a for a in appsync.list_graphql_apis()["graphqlApis"] if a["name"] == "jucr-dev")
    assert api["authenticationType"] == "AWS_LAMBDA"
    assert api["lambdaAuthorizerConfig"]["authorizerUri"].endswith(":function:jucr-dev-authorizer")
    assert [p["authenticationType"] for p in api["additionalAuthenticationProviders"]] == ["API_KEY", "AWS_IAM"]
    policy = json.loads(lam.get_policy(FunctionName="jucr-dev-authorizer")["Policy"])
    statement = next(s for s in policy["Statement"] if s["Sid"] == "jucr-dev-appsync-authorizer")
    assert statement["Principal"] == {"Service": "appsync.amazonaws.com"}
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"] == api["arn"]
    assert len(appsync.list_api_keys(apiId=api["apiId"])["apiKeys"]) == 1
    assert appsync.get_schema_creation_status(apiId=api["apiId"])["status"] in ("SUCCESS", "ACTIVE")
    assert {k[1] for k in fake.data_sources} == {"auth_resolver", "billing_resolver", "stations_resolver",
                                                 "PublishNone"}
    assert ("Query", "wallet") in {(k[1], k[2]) for k in fake.resolvers}
    # Request limits (as sent: moto drops them) and the WAF web ACL associated with the API.
    assert fake.api_fields[api["apiId"]] == {"queryDepthLimit": 15, "resolverCountLimit": 20,
                                             "introspectionConfig": "ENABLED"}
    assert clients("wafv2").get_web_acl_for_resource(ResourceArn=api["arn"])["WebACL"]["Name"] == "jucr-dev-api"


def _assert_bus_to_appsync(clients) -> None:
    """Bus -> AppSync rules with input transformer and a role allowed appsync:GraphQL."""
    appsync_target = clients("events").list_targets_by_rule(Rule="jucr-dev-to-appsync-invoice-generated",
                                                            EventBusName="jucr-dev")["Targets"][0]
    assert "publishInvoiceGenerated(input: $input)" in appsync_target["AppSyncParameters"]["GraphQLOperation"]
    assert appsync_target["InputTransformer"]["InputPathsMap"]["userId"] == "$.detail.userId"
    role_name = appsync_target["RoleArn"].rsplit("/", 1)[-1]
    role_policy = clients("iam").get_role_policy(RoleName=role_name, PolicyName="jucr-deploy")["PolicyDocument"]
    assert role_policy["Statement"][0]["Action"] == ["appsync:GraphQL"]
    assert all("/types/Mutation/fields/publish" in r for r in role_policy["Statement"][0]["Resource"])


def _assert_torn_down(clients, fake) -> None:
    """Nothing of ours left; Chalice's functions, roles and schedule rules stay."""
    sqs, events, lam = clients("sqs"), clients("events"), clients("lambda")
    assert not [a for a in clients("appsync").list_graphql_apis()["graphqlApis"] if a["name"] == "jucr-dev"]
    assert not fake.data_sources and not fake.resolvers
    assert not [a for a in clients("wafv2").list_web_acls(Scope="REGIONAL")["WebACLs"] if a["Name"] == "jucr-dev-api"]
    assert not [u for u in sqs.list_queues(QueueNamePrefix="jucr-dev-").get("QueueUrls", [])]
    assert "jucr-dev" not in {b["Name"] for b in events.list_event_buses()["EventBuses"]}
    assert not clients("cloudwatch").describe_alarms(AlarmNamePrefix="jucr-dev-")["MetricAlarms"]
    assert not [t for t in clients("sns").list_topics()["Topics"] if t["TopicArn"].endswith(":jucr-dev-alarms")]
    roles = {r["RoleName"] for r in clients("iam").list_roles()["Roles"]}
    assert not {"jucr-dev-appsync-datasources", "jucr-dev-events-to-appsync"} & roles
    assert "jucr-dev-billing_consumer" in roles  # Chalice's role stays
    policy = json.loads(lam.get_policy(FunctionName="jucr-dev-authorizer")["Policy"]) if _has_policy(lam) else {}
    assert not [s for s in policy.get("Statement", []) if s["Sid"] == "jucr-dev-appsync-authorizer"]
    for function in ("ocm_sync", "ocm_full_sweep"):
        schedule_target = events.list_targets_by_rule(Rule=f"jucr-{STAGE}-{function}-event")["Targets"][0]
        assert "DeadLetterConfig" not in schedule_target and "RetryPolicy" not in schedule_target
        assert lam.get_function(FunctionName=f"jucr-{STAGE}-{function}")


def _has_policy(lam) -> bool:
    try:
        lam.get_policy(FunctionName="jucr-dev-authorizer")
        return True
    except lam.exceptions.ResourceNotFoundException:
        return False


def test_chalice_package_prod_has_no_api_gateway(project, moto_env, tmp_path):
    chalice = str(Path(sys.executable).parent / "chalice")
    _sh([chalice, "package", "--stage", "prod", str(tmp_path / "out")], project, moto_env)
    template = json.loads((tmp_path / "out" / "sam.json").read_text())
    types = {r["Type"] for r in template["Resources"].values()}
    assert not {t for t in types if t == "AWS::Serverless::Api" or t.startswith("AWS::ApiGateway")}, types
    assert "AWS::Serverless::Function" in types
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Function"]
    assert len(functions) == len(FUNCTIONS)
