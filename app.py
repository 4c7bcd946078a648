"""Wiring only: which trigger runs which function in ``chalicelib``.

Domain modules are imported inside each handler, not at the top: every Lambda
of a Chalice app loads this same file, and the authorizer's cold start must not
pay for pymongo, boto3 or the billing code it never uses. The imports at the
top are what every function needs: ``observed``, which each handler runs through,
so its log records carry the Lambda context and its metrics are flushed
(``chalicelib/observability/handler.py``), and the settings sections below.

Each resolver Lambda's GraphQL fields are in ``chalicelib/<domain>/graphql.py``.
Subscriptions run no Lambda: bus rules feed AppSync's publish mutations, declared once
in ``appsync/subscriptions.py`` (the deploy step) and served locally by ``devstack/realtime.py``.

Resource names (queues, schedules) are read once here, because Chalice needs them
at import: ``CoreSettings`` (app name, stage) and ``ScheduleSettings``, the two
sections every function loads. Each handler's domain loads its own sections lazily
(``bootstrap.settings``), so a bad value of one domain stops only that domain's functions.
"""

import os

from chalice import Chalice

from chalicelib.config import CoreSettings, ScheduleSettings, load_section
from chalicelib.observability.handler import observed

# configure_logs=False: Chalice would add its own plain-text handler to the "jucr" logger, the one
# Powertools writes JSON to, so every record went out twice and once past the PII-scrubbing formatter.
app = Chalice(app_name="jucr", configure_logs=False)

_CORE = load_section(CoreSettings)
# Every function validates the schedules, the authorizer too: Chalice needs them here to declare the
# schedule functions. A bad value cannot reach a running Lambda, though: `chalice package` and
# `chalice deploy` import this file with the stage's environment first and stop on it.
_SCHEDULES = load_section(ScheduleSettings)
_STAGE = _CORE.stage


# --- AppSync: authorizer and resolvers -------------------------------------------------

@app.lambda_function(name="authorizer")
@observed
def authorizer(event, context):
    from chalicelib.auth.entry import authorize

    return authorize(event)


@app.lambda_function(name="auth_resolver")
@observed
def auth_resolver(event, context):
    from chalicelib.auth.entry import resolve

    return resolve(event, context)


@app.lambda_function(name="billing_resolver")
@observed
def billing_resolver(event, context):
    from chalicelib.billing.entry import resolve

    return resolve(event, context)


@app.lambda_function(name="stations_resolver")
@observed
def stations_resolver(event, context):
    from chalicelib.ocm.entry import resolve

    return resolve(event, context)


# --- Queues --------------------------------------------------------------------------

@app.on_sqs_message(queue=_CORE.queue_name("billing"), batch_size=10, name="billing_consumer")
@observed
def billing_consumer(event):
    from chalicelib.billing.entry import handle_sessions

    return handle_sessions(event.to_dict(), event.context)


@app.on_sqs_message(queue=_CORE.queue_name("wallets"), batch_size=10, name="wallet_opener")
@observed
def wallet_opener(event):
    from chalicelib.billing.entry import handle_registrations

    return handle_registrations(event.to_dict(), event.context)


@app.on_sqs_message(queue=_CORE.queue_name("billing-dlq"), batch_size=10, name="reconcile_billing_dlq")
@observed
def reconcile_billing_dlq(event):
    from chalicelib.dlq.entry import reconcile

    return reconcile("billing-dlq", event.to_dict(), event.context)


@app.on_sqs_message(queue=_CORE.queue_name("wallets-dlq"), batch_size=10, name="reconcile_wallets_dlq")
@observed
def reconcile_wallets_dlq(event):
    from chalicelib.dlq.entry import reconcile

    return reconcile("wallets-dlq", event.to_dict(), event.context)


@app.on_sqs_message(queue=_CORE.queue_name("ocm-sync-dlq"), batch_size=10, name="reconcile_ocm_sync_dlq")
@observed
def reconcile_ocm_sync_dlq(event):
    from chalicelib.dlq.entry import reconcile

    return reconcile("ocm-sync-dlq", event.to_dict(), event.context)


# --- Schedules -----------------------------------------------------------------------

if _SCHEDULES.ocm_sync_schedule != "off":

    @app.schedule(_SCHEDULES.ocm_sync_schedule, name="ocm_sync")
    @observed
    def ocm_sync(event):
        from chalicelib.ocm.entry import scheduled_sync

        return scheduled_sync(full=False, context=event.context)


if _SCHEDULES.ocm_full_sweep_schedule != "off":

    @app.schedule(_SCHEDULES.ocm_full_sweep_schedule, name="ocm_full_sweep")
    @observed
    def ocm_full_sweep(event):
        from chalicelib.ocm.entry import scheduled_sync

        return scheduled_sync(full=True, context=event.context)


# --- Local stage only: the AppSync stand-in and the bus door ----------------------------
# They live in devstack/, which Chalice does not package: a packaged stage never
# reaches this import, nor does a Lambda runtime (AWS_LAMBDA_RUNTIME_API is set for
# it), which is how LOCAL_LAMBDAS=package runs the package in the local stage. The
# routes find the handlers through the app they are registered on, so nothing
# imports app.py back.

if _STAGE == "local" and "AWS_LAMBDA_RUNTIME_API" not in os.environ:
    from devstack.local_routes import local_routes

    app.register_blueprint(local_routes)
