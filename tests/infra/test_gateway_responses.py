"""API Gateway answers for itself (unknown route, too large, throttled, ...) with the API's
gateway responses; their default for an unknown route is a 403 whose message ends in
"Authorization=<the caller's Authorization header>", echoing a bearer token. The app stack
infra/deploy.py builds gives every such response a fixed body, as the local server does."""

from __future__ import annotations

import json

from infra.deploy import GATEWAY_RESPONSES, prepare_app_template

STAGE_OUTPUTS = {"AlertsQueueArn": "arn:aws:sqs:us-east-1:111122223333:flowtrader-dev-alerts"}


def _sam() -> dict:
    """The shape of `chalice package`'s sam.json: the API as AWS::Serverless::Api with a
    Swagger DefinitionBody (tests/infra/test_package.py checks the real one)."""
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {
            "RestAPI": {
                "Type": "AWS::Serverless::Api",
                "Properties": {
                    "EndpointConfiguration": "EDGE",
                    "StageName": "v1",
                    "DefinitionBody": {
                        "swagger": "2.0",
                        "info": {"version": "1.0", "title": "flowtrader"},
                        "schemes": ["https"],
                        "paths": {"/webhook": {"post": {}}},
                    },
                },
            }
        },
    }


def _responses(template: dict) -> dict:
    api = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    return api["x-amazon-apigateway-gateway-responses"]


def test_unknown_route_is_a_404_with_a_fixed_body_in_aws():
    responses = _responses(prepare_app_template(_sam(), "dev", STAGE_OUTPUTS, "s3://b/x.zip"))

    missing = responses["MISSING_AUTHENTICATION_TOKEN"]
    assert missing["statusCode"] == "404"
    assert json.loads(missing["responseTemplates"]["application/json"]) == {
        "error": "no such route"
    }


def test_no_gateway_response_echoes_anything_from_the_request():
    responses = _responses(prepare_app_template(_sam(), "dev", STAGE_OUTPUTS, "s3://b/x.zip"))

    assert {"MISSING_AUTHENTICATION_TOKEN", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)
    for response_type, response in responses.items():
        for template in response["responseTemplates"].values():
            assert "$" not in template, response_type  # no $context.error.message et al.
            json.loads(template)
        for value in response.get("responseParameters", {}).values():
            assert value.startswith("'"), response_type  # static values, no method.request.*


def test_the_local_server_answers_an_unknown_route_as_the_gateway_does():
    from devstack.http import NO_SUCH_ROUTE

    template = GATEWAY_RESPONSES["MISSING_AUTHENTICATION_TOKEN"]["responseTemplates"]
    assert json.loads(template["application/json"]) == json.loads(NO_SUCH_ROUTE)
