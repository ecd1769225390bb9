"""infra/template.yaml: lints clean, declares what a deployed stage needs, and the stack
moto creates from it (the same one every integration test runs against) has it too.

moto's CloudFormation drops some properties (TTL, point-in-time recovery, table SSE,
bucket versioning, public access block) and cannot create alarms, secrets or bucket
policies (EmbeddedAws=true skips them), so those are asserted on the template; everything
moto keeps is asserted on the created resource.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from cfnlint.decode import cfn_yaml

from infra.deploy import VISIBILITY_PER_TIMEOUT, worker_timeout_s

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "infra" / "template.yaml"
CONFIG = json.loads((REPO / ".chalice" / "config.json").read_text())


@pytest.fixture(scope="module")
def template() -> dict:
    return cfn_yaml.load(str(TEMPLATE))


def _resources(template: dict, kind: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_cfn_lint_passes():
    lint = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(TEMPLATE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_outputs_the_app_and_local_stack_read_are_kept(template):
    assert {
        "AlertsTableName",
        "StateTableName",
        "AlertsQueueUrl",
        "AlertsQueueArn",
        "AlertsDeadLetterQueueUrl",
        "NotificationsTopicArn",
        "ReportsBucketName",
        "AppSecretArn",
        "ArtifactsBucketName",
    } <= set(template["Outputs"])


def test_tables_are_on_demand_recoverable_encrypted_and_expire_transient_items(template):
    tables = _resources(template, "AWS::DynamoDB::Table")
    assert set(tables) == {"AlertsTable", "StateTable"}
    for props in (t["Properties"] for t in tables.values()):
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert props["SSESpecification"]["SSEEnabled"] is True
        assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_queue_visibility_covers_six_worker_timeouts_in_every_stage(template):
    default = int(template["Parameters"]["QueueVisibilityTimeoutSeconds"]["Default"])
    for stage in CONFIG["stages"]:
        assert default >= VISIBILITY_PER_TIMEOUT * worker_timeout_s(CONFIG, stage), stage


def test_buckets_are_private_encrypted_and_reports_versioned(template):
    buckets = _resources(template, "AWS::S3::Bucket")
    assert set(buckets) == {"ReportsBucket", "ArtifactsBucket"}
    for props in (b["Properties"] for b in buckets.values()):
        assert all(props["PublicAccessBlockConfiguration"].values())
        assert len(props["PublicAccessBlockConfiguration"]) == 4
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert buckets["ReportsBucket"]["Properties"]["VersioningConfiguration"] == {
        "Status": "Enabled"
    }
    policy = template["Resources"]["ReportsBucketPolicy"]["Properties"]["PolicyDocument"]
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_secret_holds_every_key_and_generates_the_passphrase(template):
    secret = template["Resources"]["AppSecret"]["Properties"]
    generated = secret["GenerateSecretString"]
    keys = json.loads(generated["SecretStringTemplate"])
    assert generated["GenerateStringKey"] == "webhook_passphrase"
    assert {"api_token", "alpaca_api_key", "openai_api_key", "unusual_whales_api_key"} <= set(keys)
    assert {"twilio_account_sid", "twilio_auth_token"} <= set(keys)


def test_alarms_page_the_topic_on_dlq_worker_errors_and_throttles(template):
    alarms = _resources(template, "AWS::CloudWatch::Alarm")
    watched = {
        (a["Properties"]["MetricName"], json.dumps(a["Properties"]["Dimensions"][0]["Value"]))
        for a in alarms.values()
    }
    worker = json.dumps({"Fn::Sub": "flowtrader-${Stage}-process_alerts"})
    assert ("Errors", worker) in watched
    assert ("Throttles", worker) in watched
    dlq = json.dumps({"Fn::GetAtt": ["AlertsDeadLetterQueue", "QueueName"]})
    assert ("ApproximateNumberOfMessagesVisible", dlq) in watched
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "NotificationsTopic"}]
        assert alarm["Condition"] == "OnAws"


def test_only_moto_gaps_are_conditional(template):
    conditional = {k for k, v in template["Resources"].items() if v.get("Condition") == "OnAws"}
    kinds = {template["Resources"][k]["Type"] for k in conditional}
    assert kinds == {
        "AWS::CloudWatch::Alarm",
        "AWS::SecretsManager::Secret",
        "AWS::S3::BucketPolicy",
    }


def test_stack_in_moto_has_the_queue_redrive_and_encryption(aws):
    sqs = boto3.client("sqs")
    attrs = sqs.get_queue_attributes(
        QueueUrl=aws.outputs["AlertsQueueUrl"], AttributeNames=["All"]
    )["Attributes"]
    redrive = json.loads(attrs["RedrivePolicy"])
    dlq = sqs.get_queue_attributes(
        QueueUrl=aws.outputs["AlertsDeadLetterQueueUrl"], AttributeNames=["All"]
    )["Attributes"]
    assert redrive == {"deadLetterTargetArn": dlq["QueueArn"], "maxReceiveCount": 5}
    assert int(attrs["VisibilityTimeout"]) >= VISIBILITY_PER_TIMEOUT * 60
    assert attrs["SqsManagedSseEnabled"] == "true"
    assert int(dlq["MessageRetentionPeriod"]) == 14 * 24 * 3600


def test_stack_in_moto_has_the_tables_and_their_indexes(aws):
    ddb = boto3.client("dynamodb")
    alerts = ddb.describe_table(TableName=aws.outputs["AlertsTableName"])["Table"]
    assert alerts["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    # pending: the sweeper's; recent: the dashboard's list of a day's alerts (issue 13)
    assert [i["IndexName"] for i in alerts["GlobalSecondaryIndexes"]] == ["pending", "recent"]
    state = ddb.describe_table(TableName=aws.outputs["StateTableName"])["Table"]
    assert [k["AttributeName"] for k in state["KeySchema"]] == ["pk", "sk"]


def test_stack_in_moto_has_the_encrypted_buckets(aws):
    s3 = boto3.client("s3")
    bucket = aws.outputs["ReportsBucketName"]
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
