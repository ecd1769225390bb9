"""Deploy or destroy one flowtrader stage: `python -m infra.deploy deploy --stage dev`.

Two CloudFormation stacks per stage:

1. `flowtrader-<stage>-infra` from infra/template.yaml: tables, queue + DLQ, topic,
   buckets, the app secret, alarms. Its outputs are written into the stage's
   `environment_variables` in .chalice/config.json (FLOWTRADER_*), and the secret gets a
   generated webhook passphrase and API token if it has none.
2. `flowtrader-<stage>-app` from `chalice package`, post-processed here, because
   `chalice deploy` cannot express two things the worker needs:
   - the queue: app.py names a logical queue (`flowtrader-alerts`, a constant; no env reads
     at import) and the stage's physical queue is `flowtrader-<stage>-alerts`. The SQS
     event is pointed at the infra stack's AlertsQueueArn output (`SQS_QUEUES`).
   - `FunctionResponseTypes: [ReportBatchItemFailures]`: without it Lambda ignores the
     worker's `batchItemFailures` and deletes failed records as if they had succeeded.
   Functions get Chalice's usual names (`flowtrader-<stage>[-<handler>]`, which the
   alarms watch) and log groups with a retention; the API gets gateway responses with fixed
   bodies (GATEWAY_RESPONSES), so API Gateway never echoes a caller's Authorization header.

`destroy` deletes the app stack, empties the buckets, deletes the infra stack and the
secret. Every AWS call goes through one boto3 session; `--endpoint-url` (or
AWS_ENDPOINT_URL) points it at moto's server, which is how tests/infra exercises it.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError, WaiterError

PROJECT_DIR = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).resolve().parent / "template.yaml"
APP_NAME = "flowtrader"

# Stack output -> the setting (env var) the Lambdas read it from.
OUTPUT_TO_ENV = {
    "AlertsTableName": "FLOWTRADER_ALERTS_TABLE",
    "StateTableName": "FLOWTRADER_STATE_TABLE",
    "AlertsQueueUrl": "FLOWTRADER_QUEUE_URL",
    "NotificationsTopicArn": "FLOWTRADER_TOPIC_ARN",
    "ReportsBucketName": "FLOWTRADER_REPORTS_BUCKET",
    "AppSecretArn": "FLOWTRADER_SECRETS_ARN",
}


def _gateway_response(message: str, status: str | None = None) -> dict[str, Any]:
    """One gateway response (x-amazon-apigateway-gateway-responses): JSON, fixed text."""
    response: dict[str, Any] = {
        "responseParameters": {"gatewayresponse.header.Content-Type": "'application/json'"},
        "responseTemplates": {"application/json": json.dumps({"error": message})},
    }
    if status:  # without one, a DEFAULT_* response keeps each type's own status
        response["statusCode"] = status
    return response


# API Gateway's own answers (no route, too large, throttled, ...), as the API's gateway
# responses. The default for an unknown route is a 403 whose message ends in
# "Authorization=<the request's Authorization header>" (the caller's bearer token, echoed, and
# logged by anything in between); every body here is fixed text, nothing from the request.
# The local server (devstack/http.py) answers an unknown route the same way.
GATEWAY_RESPONSES = {
    "MISSING_AUTHENTICATION_TOKEN": _gateway_response("no such route", "404"),
    "RESOURCE_NOT_FOUND": _gateway_response("no such route", "404"),
    "ACCESS_DENIED": _gateway_response("forbidden", "403"),
    "UNAUTHORIZED": _gateway_response("unauthorized", "401"),
    "INVALID_SIGNATURE": _gateway_response("forbidden", "403"),
    "EXPIRED_TOKEN": _gateway_response("forbidden", "403"),
    "INVALID_API_KEY": _gateway_response("forbidden", "403"),
    "REQUEST_TOO_LARGE": _gateway_response("the request is too large", "413"),
    "UNSUPPORTED_MEDIA_TYPE": _gateway_response(
        "send the alert as application/json or text/plain", "415"
    ),
    "BAD_REQUEST_BODY": _gateway_response("the request body is malformed", "400"),
    "BAD_REQUEST_PARAMETERS": _gateway_response("the request parameters are malformed", "400"),
    "THROTTLED": _gateway_response("too many requests; retry later", "429"),
    "QUOTA_EXCEEDED": _gateway_response("too many requests; retry later", "429"),
    "DEFAULT_4XX": _gateway_response("the request was refused"),
    "DEFAULT_5XX": _gateway_response("internal server error; retry later"),
}
# Logical queue name in app.py's @app.on_sqs_message -> infra output holding its ARN.
SQS_QUEUES = {"flowtrader-alerts": "AlertsQueueArn"}
# AWS: an SQS source's visibility timeout should be at least 6x the function timeout.
VISIBILITY_PER_TIMEOUT = 6
LOG_RETENTION_DAYS = 30
# Keys of the app secret (Settings field names); these two are generated when empty.
SECRET_KEYS = (
    "webhook_passphrase",
    "api_token",
    "alpaca_api_key",
    "alpaca_secret_key",
    "openai_api_key",
    "unusual_whales_api_key",
    "twilio_account_sid",
    "twilio_auth_token",
)
GENERATED_SECRET_KEYS = ("webhook_passphrase", "api_token")


class DeployError(RuntimeError):
    """A deployment step failed; the message says which and what to do."""


def infra_stack_name(stage: str) -> str:
    return f"{APP_NAME}-{stage}-infra"


def app_stack_name(stage: str) -> str:
    return f"{APP_NAME}-{stage}-app"


@dataclass
class Target:
    """Where a stage goes: region, optional endpoint (moto) and the project checkout."""

    stage: str
    region: str | None = None
    endpoint_url: str | None = None
    project_dir: Path = PROJECT_DIR
    _session: Any = field(default=None, repr=False)

    def client(self, service: str) -> Any:
        if self._session is None:
            self._session = boto3.session.Session(region_name=self.region)
        if self._session.region_name is None:
            raise DeployError("no AWS region: pass --region or set AWS_REGION")
        return self._session.client(service, endpoint_url=self.endpoint_url)

    @property
    def config_path(self) -> Path:
        return self.project_dir / ".chalice" / "config.json"


# --- .chalice/config.json ----------------------------------------------------------------


def load_config(target: Target) -> dict[str, Any]:
    return json.loads(target.config_path.read_text())


def save_config(target: Target, config: dict[str, Any]) -> None:
    target.config_path.write_text(json.dumps(config, indent=2) + "\n")


def stage_config(config: dict[str, Any], stage: str) -> dict[str, Any]:
    try:
        return config["stages"][stage]
    except KeyError:
        raise DeployError(f"stage {stage!r} is not in .chalice/config.json") from None


def worker_timeout_s(config: dict[str, Any], stage: str) -> int:
    """process_alerts' timeout as Chalice resolves it: function, stage, then app level."""
    stage_cfg = stage_config(config, stage)
    function_cfg = stage_cfg.get("lambda_functions", {}).get("process_alerts", {})
    for level in (function_cfg, stage_cfg, config):
        if "lambda_timeout" in level:
            return int(level["lambda_timeout"])
    return 60  # Chalice's default


def write_stage_environment(target: Target, outputs: dict[str, str]) -> dict[str, str]:
    """Put the infra outputs into the stage's environment_variables; returns what changed."""
    config = load_config(target)
    env = stage_config(config, target.stage).setdefault("environment_variables", {})
    written = {OUTPUT_TO_ENV[k]: v for k, v in outputs.items() if k in OUTPUT_TO_ENV}
    env.update(written)
    env["FLOWTRADER_STAGE"] = target.stage
    save_config(target, config)
    return written


def clear_stage_environment(target: Target) -> None:
    config = load_config(target)
    env = stage_config(config, target.stage).get("environment_variables", {})
    for name in OUTPUT_TO_ENV.values():
        env.pop(name, None)
    save_config(target, config)


# --- IAM: .chalice/policy-<stage>.json ---------------------------------------------------


def policy_document(stage: str) -> dict[str, Any]:
    """What the stage's functions use, on the stage's resources only (names are fixed by
    infra/template.yaml; region and account are wildcards so one file serves any account)."""
    prefix = f"{APP_NAME}-{stage}"
    tables = [f"arn:aws:dynamodb:*:*:table/{prefix}-{t}" for t in ("alerts", "state")]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Logs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [
                    f"arn:aws:logs:*:*:log-group:/aws/lambda/{prefix}*",
                    f"arn:aws:logs:*:*:log-group:/aws/lambda/{prefix}*:*",
                ],
            },
            {
                "Sid": "Tables",
                "Effect": "Allow",
                "Action": [
                    "dynamodb:DescribeTable",
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:BatchWriteItem",
                    "dynamodb:ConditionCheckItem",
                    "dynamodb:Query",
                ],
                "Resource": tables + [f"{t}/index/*" for t in tables],
            },
            {
                "Sid": "AlertQueue",
                "Effect": "Allow",
                "Action": [
                    "sqs:SendMessage",
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes",
                ],
                "Resource": f"arn:aws:sqs:*:*:{prefix}-alerts",
            },
            {
                "Sid": "Notifications",
                "Effect": "Allow",
                # Subscribe/Unsubscribe/List: POST/DELETE /api/subscriptions (issue 13).
                "Action": [
                    "sns:Publish",
                    "sns:Subscribe",
                    "sns:Unsubscribe",
                    "sns:ListSubscriptionsByTopic",
                ],
                "Resource": f"arn:aws:sns:*:*:{prefix}-notifications",
            },
            {
                "Sid": "Reports",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject"],
                "Resource": f"arn:aws:s3:::{prefix}-reports-*/*",
            },
            {
                "Sid": "ReportsList",
                "Effect": "Allow",
                # Without it a missing report is AccessDenied, not NoSuchKey (S3 GetObject).
                "Action": "s3:ListBucket",
                "Resource": f"arn:aws:s3:::{prefix}-reports-*",
            },
            {
                "Sid": "AppSecret",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                # Secrets Manager appends a random 6-character suffix to the name.
                "Resource": [
                    f"arn:aws:secretsmanager:*:*:secret:{prefix}/app-*",
                    f"arn:aws:secretsmanager:*:*:secret:{prefix}/google-*",  # Sheets journal
                ],
            },
        ],
    }


def write_policies(target: Target) -> list[Path]:
    """Regenerate .chalice/policy-<stage>.json for every stage in the config."""
    written = []
    for stage in load_config(target)["stages"]:
        path = target.project_dir / ".chalice" / f"policy-{stage}.json"
        path.write_text(json.dumps(policy_document(stage), indent=2) + "\n")
        written.append(path)
    return written


# --- CloudFormation ----------------------------------------------------------------------


def _stack_status(cfn: Any, name: str) -> str | None:
    try:
        return cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def _stack_parameters(cfn: Any, name: str) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}


def stack_outputs(cfn: Any, name: str) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def _wait(cfn: Any, waiter: str, name: str) -> None:
    try:
        cfn.get_waiter(waiter).wait(StackName=name, WaiterConfig={"Delay": 5, "MaxAttempts": 360})
    except WaiterError as exc:
        stacks = (exc.last_response or {}).get("Stacks") or [{}]
        reason = stacks[0].get("StackStatusReason") or str(exc)
        raise DeployError(
            f"stack {name}: {waiter} failed ({reason}); see the stack's events"
        ) from exc


def apply_stack(
    cfn: Any,
    name: str,
    parameters: dict[str, str | None],
    *,
    template_body: str | None = None,
    template_url: str | None = None,
    capabilities: Sequence[str] = ("CAPABILITY_NAMED_IAM",),
) -> dict[str, str]:
    """Create the stack, or update it ("no updates" is success). Returns its outputs.

    A parameter given as None keeps its current value on update (template default on
    create). CreateStack/UpdateStack rather than change sets: same result for a script that
    applies unreviewed, and moto's change sets drop the outputs.
    """
    status = _stack_status(cfn, name)
    if status == "ROLLBACK_COMPLETE":  # a failed first create leaves nothing to keep
        cfn.delete_stack(StackName=name)
        _wait(cfn, "stack_delete_complete", name)
        status = None
    creating = status is None
    previous = {} if creating else _stack_parameters(cfn, name)
    params = []
    for key, value in parameters.items():
        if value is None:
            value = previous.get(key)  # explicit, not UsePreviousValue: moto crashes on it
        if value is not None:
            params.append({"ParameterKey": key, "ParameterValue": value})
    request = {
        "StackName": name,
        "Parameters": params,
        "Capabilities": list(capabilities),
        **({"TemplateBody": template_body} if template_body else {"TemplateURL": template_url}),
    }
    if creating:
        cfn.create_stack(**request, OnFailure="ROLLBACK")
        _wait(cfn, "stack_create_complete", name)
    else:
        try:
            cfn.update_stack(**request)
        except ClientError as exc:
            if "No updates are to be performed" not in str(exc):
                raise
        else:
            _wait(cfn, "stack_update_complete", name)
    return stack_outputs(cfn, name)


def deploy_infra(
    target: Target, *, alarm_email: str | None = None, embedded_aws: bool = False
) -> dict[str, str]:
    """Create/update the infra stack; the queue's visibility follows the worker timeout."""
    timeout_s = worker_timeout_s(load_config(target), target.stage)
    parameters: dict[str, str | None] = {
        "Stage": target.stage,
        "QueueVisibilityTimeoutSeconds": str(VISIBILITY_PER_TIMEOUT * timeout_s),
        "AlarmEmail": alarm_email,
        "EmbeddedAws": "true" if embedded_aws else "false",
    }
    return apply_stack(
        target.client("cloudformation"),
        infra_stack_name(target.stage),
        parameters,
        template_body=TEMPLATE.read_text(),
    )


# --- the app secret ----------------------------------------------------------------------


def _read_secret(sm: Any, secret_id: str) -> dict[str, Any]:
    raw = sm.get_secret_value(SecretId=secret_id)["SecretString"]
    value = json.loads(raw) if raw.strip().startswith("{") else {}
    return value if isinstance(value, dict) else {}


def seed_secret(sm: Any, secret_id: str) -> list[str]:
    """Give the secret every known key and generate the passphrase/token when empty.

    Never overwrites a value that is set. Returns the names of keys it generated.
    """
    value = _read_secret(sm, secret_id)
    before = dict(value)
    generated = []
    for key in SECRET_KEYS:
        value.setdefault(key, "")
    for key in GENERATED_SECRET_KEYS:
        if not value[key]:
            value[key] = secrets.token_urlsafe(24)
            generated.append(key)
    if value != before:
        sm.put_secret_value(SecretId=secret_id, SecretString=json.dumps(value))
    return generated


def set_secret_key(sm: Any, secret_id: str, key: str, secret_value: str) -> None:
    """Set one key of the JSON secret, keeping the others."""
    from chalicelib.settings import Settings

    if key not in Settings.model_fields:
        raise DeployError(f"{key!r} is not a setting (see chalicelib/settings.py)")
    value = _read_secret(sm, secret_id)
    value[key] = secret_value
    sm.put_secret_value(SecretId=secret_id, SecretString=json.dumps(value))


# --- the app stack -----------------------------------------------------------------------


def _chalice_exe() -> str:
    beside = Path(sys.executable).with_name("chalice")
    found = str(beside) if beside.exists() else shutil.which("chalice")
    if not found:
        raise DeployError("chalice is not installed: make install")
    return found


def package_app(project_dir: Path, stage: str, out_dir: Path, region: str) -> Path:
    """Run `chalice package` (no AWS calls); returns the directory with sam.json + zip."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    env = {**os.environ, "AWS_DEFAULT_REGION": region}
    subprocess.run(
        [_chalice_exe(), "package", "--stage", stage, str(out_dir)],
        cwd=project_dir,
        env=env,
        check=True,
    )
    return out_dir


# Test suites shipped inside wheels: never imported at run time, ~5 MB zipped for pandas+numpy.
UNUSED_IN_LAMBDA = re.compile(r"^(pandas|numpy)/(.*/)?tests/")


def slim_package(zip_path: Path) -> tuple[int, int]:
    """Drop bundled third-party test suites from chalice's zip; returns (before, after) size."""
    before = zip_path.stat().st_size
    slim = zip_path.with_suffix(".slim.zip")
    with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(slim, "w") as dst:
        for info in src.infolist():
            if not UNUSED_IN_LAMBDA.match(info.filename):
                dst.writestr(info, src.read(info), compress_type=zipfile.ZIP_DEFLATED)
    slim.replace(zip_path)
    return before, zip_path.stat().st_size


def _function_name(stage: str, handler: str) -> str:
    """Chalice's naming: the API handler is `<app>-<stage>`, others `<app>-<stage>-<fn>`."""
    fn = handler.rsplit(".", 1)[-1]
    return f"{APP_NAME}-{stage}" if fn == "app" else f"{APP_NAME}-{stage}-{fn}"


def _queue_name(queue: Any) -> str:
    text = queue.get("Fn::Sub", "") if isinstance(queue, dict) else str(queue)
    match = re.search(r":([^:]+)$", text)
    if not match:
        raise DeployError(f"cannot read the queue name of SQS event {queue!r}")
    return match.group(1)


def prepare_app_template(
    sam: dict[str, Any], stage: str, outputs: dict[str, str], code_uri: str
) -> dict[str, Any]:
    """Chalice's SAM template, made deployable for one stage (see the module docstring)."""
    template = json.loads(json.dumps(sam))
    template["Description"] = f"{APP_NAME} {stage}: Lambdas and API (chalice package)"
    resources = template["Resources"]
    for resource in resources.values():
        if resource["Type"] == "AWS::Serverless::Api":
            definition = resource["Properties"]["DefinitionBody"]
            definition["x-amazon-apigateway-gateway-responses"] = GATEWAY_RESPONSES
    for logical_id, resource in list(resources.items()):
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        name = _function_name(stage, props["Handler"])
        props["FunctionName"] = name
        props["CodeUri"] = code_uri
        for event in props.get("Events", {}).values():
            if event["Type"] != "SQS":
                continue
            queue = _queue_name(event["Properties"]["Queue"])
            if queue not in SQS_QUEUES or SQS_QUEUES[queue] not in outputs:
                raise DeployError(f"{name} reads queue {queue!r}, which infra does not define")
            event["Properties"]["Queue"] = outputs[SQS_QUEUES[queue]]
            event["Properties"]["FunctionResponseTypes"] = ["ReportBatchItemFailures"]
        # Exists before the function can run, or Lambda creates it first and this fails.
        resource["DependsOn"] = [*_as_list(resource.get("DependsOn", [])), f"{logical_id}LogGroup"]
        resources[f"{logical_id}LogGroup"] = {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "LogGroupName": f"/aws/lambda/{name}",
                "RetentionInDays": LOG_RETENTION_DAYS,
            },
        }
    return template


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def upload_artifact(s3: Any, bucket: str, path: Path, prefix: str) -> str:
    """Upload under a content hash (unchanged code => no Lambda update); returns s3:// URI."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    key = f"{prefix}/{digest}{path.suffix}"
    s3.upload_file(str(path), bucket, key)
    return f"s3://{bucket}/{key}"


def deploy_app(target: Target, outputs: dict[str, str], build_dir: Path) -> dict[str, str]:
    region = target.client("cloudformation").meta.region_name
    package_dir = package_app(target.project_dir, target.stage, build_dir, region)
    before, after = slim_package(package_dir / "deployment.zip")
    print(f"deployment.zip {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB without test suites")
    s3 = target.client("s3")
    bucket = outputs["ArtifactsBucketName"]
    code_uri = upload_artifact(s3, bucket, package_dir / "deployment.zip", "code")
    sam = json.loads((package_dir / "sam.json").read_text())
    template = prepare_app_template(sam, target.stage, outputs, code_uri)
    template_path = package_dir / "template.json"
    template_path.write_text(json.dumps(template, indent=2))
    template_uri = upload_artifact(s3, bucket, template_path, "templates")
    key = template_uri.removeprefix(f"s3://{bucket}/")
    url = f"https://{bucket}.s3.{region}.amazonaws.com/{key}"  # CloudFormation reads it as you
    return apply_stack(
        target.client("cloudformation"),
        app_stack_name(target.stage),
        {},
        template_url=url,
        capabilities=("CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"),
    )


# --- commands ----------------------------------------------------------------------------


def deploy(
    target: Target,
    *,
    alarm_email: str | None = None,
    embedded_aws: bool = False,
    skip_app: bool = False,
) -> dict[str, str]:
    """The whole stage: infra stack, config.json, secret, app stack. Returns all outputs."""
    started = time.perf_counter()
    print(f"[1/4] infra stack {infra_stack_name(target.stage)}")
    outputs = deploy_infra(target, alarm_email=alarm_email, embedded_aws=embedded_aws)
    print("[2/4] .chalice/config.json environment for stage", target.stage)
    write_stage_environment(target, outputs)
    if "AppSecretArn" in outputs:
        generated = seed_secret(target.client("secretsmanager"), outputs["AppSecretArn"])
        print("[3/4] secret", outputs["AppSecretArn"], "generated:", ", ".join(generated) or "-")
    if skip_app:
        print("[4/4] app stack skipped (--skip-app)")
        return outputs
    print(f"[4/4] app stack {app_stack_name(target.stage)} (chalice package)")
    build_dir = target.project_dir / "build" / target.stage
    outputs = {**outputs, **deploy_app(target, outputs, build_dir)}
    endpoint = outputs.get("EndpointURL", "")
    print(f"done in {time.perf_counter() - started:.0f} s")
    print(f"webhook URL for TradingView: {endpoint}webhook")
    print(f"health: curl {endpoint}api/health")
    return outputs


def _empty_bucket(s3: Any, bucket: str) -> None:
    try:
        paginator = s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=bucket):
            doomed = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            if doomed:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed, "Quiet": True})
    except ClientError as exc:
        if "NoSuchBucket" not in str(exc):
            raise


def destroy(target: Target) -> None:
    """Delete the app stack, empty the buckets, delete the infra stack and its secret."""
    cfn = target.client("cloudformation")
    app, infra = app_stack_name(target.stage), infra_stack_name(target.stage)
    if _stack_status(cfn, app):
        print("deleting", app)
        cfn.delete_stack(StackName=app)
        _wait(cfn, "stack_delete_complete", app)
    if _stack_status(cfn, infra):
        outputs = stack_outputs(cfn, infra)
        s3 = target.client("s3")
        for key in ("ReportsBucketName", "ArtifactsBucketName"):
            if key in outputs:
                print("emptying", outputs[key])
                _empty_bucket(s3, outputs[key])
        print("deleting", infra)
        cfn.delete_stack(StackName=infra)
        _wait(cfn, "stack_delete_complete", infra)
        if "AppSecretArn" in outputs:  # CloudFormation leaves it in a 7-30 day recovery window
            try:
                target.client("secretsmanager").delete_secret(
                    SecretId=outputs["AppSecretArn"], ForceDeleteWithoutRecovery=True
                )
            except ClientError as exc:
                if "ResourceNotFoundException" not in str(exc):
                    raise
    clear_stage_environment(target)
    print("stage", target.stage, "destroyed")


def _secret_arn(target: Target) -> str:
    outputs = stack_outputs(target.client("cloudformation"), infra_stack_name(target.stage))
    if "AppSecretArn" not in outputs:
        raise DeployError(f"no secret in stack {infra_stack_name(target.stage)}: deploy first")
    return outputs["AppSecretArn"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.deploy", description=__doc__)
    parser.add_argument(
        "command", choices=["deploy", "destroy", "set-secret", "show-secret", "policies"]
    )
    parser.add_argument("key", nargs="?", help="secret key for set-secret / show-secret")
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--region", default=None)
    parser.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"))
    parser.add_argument("--alarm-email", default=None, help="subscribe this email to alarms")
    parser.add_argument("--skip-app", action="store_true", help="infra stack and config only")
    parser.add_argument("--embedded-aws", action="store_true", help="target is moto")
    parser.add_argument("--yes", action="store_true", help="confirm destroying prod")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    target = Target(
        stage=args.stage,
        region=args.region,
        endpoint_url=args.endpoint_url,
        project_dir=args.project_dir,
    )
    try:
        if args.command == "deploy":
            deploy(
                target,
                alarm_email=args.alarm_email,
                embedded_aws=args.embedded_aws,
                skip_app=args.skip_app,
            )
        elif args.command == "destroy":
            if args.stage == "prod" and not args.yes:
                raise DeployError("destroying prod deletes its tables: add --yes to confirm")
            destroy(target)
        elif args.command == "policies":
            for path in write_policies(target):
                print("wrote", path)
        elif not args.key:
            raise DeployError(f"{args.command} needs a key, e.g. alpaca_api_key")
        elif args.command == "set-secret":
            prompt = f"{args.key} for {args.stage}: "
            value = getpass.getpass(prompt) if sys.stdin.isatty() else sys.stdin.read().strip()
            set_secret_key(target.client("secretsmanager"), _secret_arn(target), args.key, value)
            print("set", args.key)
        else:  # show-secret: you asked for it, e.g. the passphrase to paste into TradingView
            sm = target.client("secretsmanager")
            print(_read_secret(sm, _secret_arn(target)).get(args.key, ""))
    except (DeployError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
