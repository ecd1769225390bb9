"""Embedded AWS for local runs and tests: moto's server on 127.0.0.1, provisioned from the
same CloudFormation template (`infra/template.yaml`) that a real deployment uses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
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

    def __init__(self, port: int = 0) -> None:
        self.port = port or _free_port()
        env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "devstack.moto_server", "-H", "127.0.0.1", "-p", str(self.port)],
            cwd=TEMPLATE.parent.parent,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the stack, which stops this last
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"moto's server exited with {self._proc.returncode}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("moto's server did not start within 30 s")

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
    port: int = 0, stage: str = "local", *, own_process: bool = False
) -> EmbeddedAws:
    """Start moto's server on 127.0.0.1 (a free port when 0) and deploy the stack into it.

    Tests run it in-process (fast to start); the local stack gives it a process of its own.
    """
    # moto's server must not itself be redirected to an endpoint by an inherited variable.
    os.environ.pop("AWS_ENDPOINT_URL", None)
    server: ThreadedMotoServer | MotoProcess
    if own_process:
        server = MotoProcess(port)
        endpoint_url = f"http://127.0.0.1:{server.port}"
    else:
        moto_fidelity.apply()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        host, bound_port = server.get_host_and_port()
        endpoint_url = f"http://{host}:{bound_port}"
    outputs = deploy_stack(endpoint_url, stage)
    return EmbeddedAws(server=server, endpoint_url=endpoint_url, outputs=outputs)
