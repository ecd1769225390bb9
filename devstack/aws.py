"""Embedded AWS for local runs and tests: moto's server on 127.0.0.1, provisioned from the
same CloudFormation template (`infra/template.yaml`) that a real deployment uses, and for
the local stack kept across restarts under a data directory (devstack.moto_server)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

from devstack import moto_fidelity

TEMPLATE = Path(__file__).resolve().parent.parent / "infra" / "template.yaml"
REGION = "us-east-1"

# What the app reads (FLOWTRADER_*) from each output of the stack.
OUTPUT_TO_SETTING = {
    "AlertsTableName": "FLOWTRADER_ALERTS_TABLE",
    "StateTableName": "FLOWTRADER_STATE_TABLE",
    "AlertsQueueUrl": "FLOWTRADER_QUEUE_URL",
    "NotificationsTopicArn": "FLOWTRADER_TOPIC_ARN",
    "ReportsBucketName": "FLOWTRADER_REPORTS_BUCKET",
}


@dataclass
class EmbeddedAws:
    """A running moto server and the stack deployed into it."""

    server: ThreadedMotoServer | MotoProcess
    endpoint_url: str
    outputs: dict[str, str]
    restored: dict[str, object] | None = None  # what restore() found in the data directory

    def env(self) -> dict[str, str]:
        """Environment that points boto3 and the app at this embedded AWS."""
        env = {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",  # moto accepts any credentials
        }
        for output, setting in OUTPUT_TO_SETTING.items():
            if output in self.outputs:
                env[setting] = self.outputs[output]
        return env

    def stop(self) -> None:
        self.server.stop()


def aws_client(service: str, endpoint_url: str):
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's dummy credentials
    )


def deploy_stack(endpoint_url: str, stage: str = "local") -> dict[str, str]:
    """Create the infra stack in the embedded AWS and return its outputs."""
    cfn = aws_client("cloudformation", endpoint_url)
    name = f"flowtrader-{stage}"
    cfn.create_stack(
        StackName=name,
        TemplateBody=TEMPLATE.read_text(),
        Parameters=[
            {"ParameterKey": "Stage", "ParameterValue": stage},
            # moto cannot create alarms, secrets or bucket policies: skip them (infra/)
            {"ParameterKey": "EmbeddedAws", "ParameterValue": "true"},
        ],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise RuntimeError(f"stack {name} is {stack['StackStatus']}")
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def reset(endpoint_url: str) -> None:
    """Forget every resource in the embedded AWS (moto's reset API)."""
    import urllib.request

    req = urllib.request.Request(f"{endpoint_url}/moto-api/reset", method="POST")  # noqa: S310
    with urllib.request.urlopen(req, timeout=10):  # noqa: S310 - our own loopback server
        pass


class MotoProcess:
    """moto's server in a process of its own, as AWS is to a Lambda: the local stack's API
    and worker then never wait on each other's interpreter lock for an AWS call."""

    def __init__(self, port: int = 0, data_dir: Path | None = None) -> None:
        self.port = port or _free_port()
        env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
        command = [sys.executable, "-m", "devstack.moto_server", "-H", "127.0.0.1"]
        command += ["-p", str(self.port)]
        if data_dir is not None:
            command += ["--data-dir", str(data_dir)]
        self._proc = subprocess.Popen(
            command,
            cwd=TEMPLATE.parent.parent,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C reaches the stack, which stops this last
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                assert self._proc.stderr is not None
                why = self._proc.stderr.read().decode(errors="replace").strip().splitlines()
                raise RuntimeError(
                    f"moto's server exited with {self._proc.returncode}: "
                    + (why[-1] if why else "no output")
                )
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    threading.Thread(target=self._proc.stderr.read, daemon=True).start()
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("moto's server did not start within 30 s")

    @property
    def pid(self) -> int:
        return self._proc.pid

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_embedded_aws(
    port: int = 0,
    stage: str = "local",
    *,
    own_process: bool = False,
    data_dir: Path | None = None,
) -> EmbeddedAws:
    """Start moto's server on 127.0.0.1 (a free port when 0) and deploy the stack into it.

    Tests run it in-process (fast to start); the local stack gives it a process of its own
    and a `data_dir`, whose tables it restores once the template has created them.
    """
    # moto's server must not itself be redirected to an endpoint by an inherited variable.
    os.environ.pop("AWS_ENDPOINT_URL", None)
    server: ThreadedMotoServer | MotoProcess
    if own_process:
        server = MotoProcess(port, data_dir)
        endpoint_url = f"http://127.0.0.1:{server.port}"
    else:
        moto_fidelity.apply()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        host, bound_port = server.get_host_and_port()
        endpoint_url = f"http://{host}:{bound_port}"
    try:
        outputs = deploy_stack(endpoint_url, stage)
        restored = _restore(endpoint_url) if own_process and data_dir is not None else None
    except BaseException:
        server.stop()
        raise
    return EmbeddedAws(server=server, endpoint_url=endpoint_url, outputs=outputs, restored=restored)


def _restore(endpoint_url: str) -> dict[str, object]:
    import urllib.request

    req = urllib.request.Request(f"{endpoint_url}/_flowtrader/restore", method="POST")  # noqa: S310
    with urllib.request.urlopen(req, timeout=300) as answer:  # noqa: S310 - our loopback server
        return json.loads(answer.read())


UNDECIDED = ("stored", "queued", "received", "failed")


def requeue_undecided(env: dict[str, str]) -> int:
    """After a restore, queue again every alert that had not reached a decision.

    The queue is not kept across restarts; the alerts table is, and it says which alerts
    were still waiting (`stored`, `queued`), taken by a worker that died (`received`), or
    failed with deliveries left (`failed` below the redrive count). A second message for an
    alert is harmless: the worker's claim lets one delivery through.
    """
    from chalicelib.services.process_alert import MAX_RECEIVES

    ddb = aws_client("dynamodb", env["AWS_ENDPOINT_URL"])
    sqs = aws_client("sqs", env["AWS_ENDPOINT_URL"])
    queued = 0
    kwargs: dict[str, object] = {
        "TableName": env["FLOWTRADER_ALERTS_TABLE"],
        "FilterExpression": "#s IN (:a, :b, :c, :d)",
        "ProjectionExpression": "alert_id, #s, details",
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {
            f":{k}": {"S": v} for k, v in zip("abcd", UNDECIDED, strict=True)
        },
    }
    while True:
        page = ddb.scan(**kwargs)
        for item in page.get("Items", []):
            if item["status"]["S"] == "failed":
                details = json.loads(item.get("details", {}).get("S", "{}"))
                if int(details.get("attempt") or 0) >= MAX_RECEIVES:
                    continue  # it gave up (and said so); the dead-letter queue had it
            sqs.send_message(
                QueueUrl=env["FLOWTRADER_QUEUE_URL"],
                MessageBody=json.dumps({"alert_id": item["alert_id"]["S"]}),
            )
            queued += 1
        if "LastEvaluatedKey" not in page:
            return queued
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def void_account_lease(env: dict[str, str], pid: int | None = None) -> None:
    """Drop the account lease a dead process held (it would block the others for the
    lease's TTL): any holder when no process of this stack is alive (`pid` None, at start),
    else only a lease process `pid` held (holders name their process: account_lease)."""
    from chalicelib.adapters.dynamodb_state import ACCOUNT_LOCK_KEY

    db = aws_client("dynamodb", env["AWS_ENDPOINT_URL"])
    table = env["FLOWTRADER_STATE_TABLE"]
    if pid is None:
        db.delete_item(TableName=table, Key=ACCOUNT_LOCK_KEY)
        return
    held = db.get_item(TableName=table, Key=ACCOUNT_LOCK_KEY, ConsistentRead=True).get("Item")
    holder = held["holder"]["S"] if held else ""
    if holder.rpartition("#")[2].split(".")[0] != str(pid):
        return
    # It may have expired and gone to another process meanwhile: then it is not void.
    with contextlib.suppress(db.exceptions.ConditionalCheckFailedException):
        db.delete_item(
            TableName=table,
            Key=ACCOUNT_LOCK_KEY,
            ConditionExpression="holder = :h",
            ExpressionAttributeValues={":h": {"S": holder}},
        )
