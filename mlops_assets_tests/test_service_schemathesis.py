"""Schemathesis against the running service's own OpenAPI document (``GET /docs.json``, what BentoML publishes).

The server is test_service_http's ``served`` fixture (real ``bentoml serve`` over a real champion and online store),
reused rather than rebuilt. Every operation in the document gets a bounded, derandomised set of generated requests,
valid and invalid (Hypothesis, ``EXAMPLES`` per operation; no example database on disk), and each answer must:

- not be a 5xx (a malformed request is the client's error, a valid one must be answered);
- carry a status code and a content type the document declares for that operation;
- if it is a success, match the declared schema (the ``Prediction`` model, the batch, the status object);
- if it is a 400, be BentoML's JSON error object naming what is wrong.

Date-times are generated as naive wall-clock times, the only form ``FlightRequest`` accepts, so valid requests reach
the model instead of all stopping at the time-zone check. BentoML's document declares its 400 ``detail`` a string
while BentoML answers pydantic's error list there, so a 400's body is checked by :func:`error_names_the_problem`
instead of against the document (a mismatch inside BentoML 1.4.39, not in this service).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mlops_assets_tests.test_evaluation_assets import setup  # noqa: F401  (fixture of served)
from mlops_assets_tests.test_service_http import Served, served  # noqa: F401  (fixture)

EXAMPLES = 25  # per operation and mode: the generated part takes about 30 s on 2 busy cores
OPERATIONS = [
    ("POST", "/predict"),
    ("POST", "/predict_batch"),
    ("POST", "/status"),
    ("GET", "/livez"),
    ("GET", "/readyz"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
]
# Invalid requests only where there is a body to break: the GET operations take no input at all.
GENERATED = [
    (method, path, mode)
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or method == "POST"
]

# Registered for this process's schemathesis only (no other test module uses it).
schemathesis.openapi.format("date-time", st.datetimes().map(lambda moment: moment.isoformat()))


def success_conforms_to_the_schema(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> bool | None:
    if response.status_code >= 400:
        return None
    return response_schema_conformance(ctx, response, case)


def error_names_the_problem(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> bool | None:
    if response.status_code != 400:
        return None
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str), f"a 400 without an error message: {body}"
    assert body.get("detail"), f"a 400 that does not say what is wrong: {body}"
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    success_conforms_to_the_schema,
    error_names_the_problem,
]


@pytest.fixture(scope="module")
def service_schema(served: Served) -> schemathesis.BaseSchema:  # noqa: F811
    schema = schemathesis.openapi.from_url(f"{served.url}/docs.json", timeout=30)
    schema.config.update(base_url=served.url, request_timeout=30)
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
    return schema


def test_the_document_lists_the_services_operations(service_schema: schemathesis.BaseSchema) -> None:
    listed = {(op.ok().method.upper(), op.ok().path) for op in service_schema.get_all_operations()}
    # The generated test below is parametrised over OPERATIONS: an operation the document gains must be added there.
    assert listed == set(OPERATIONS), f"/docs.json lists {sorted(listed)}"


# Each (operation, mode) is its own test, driven by Hypothesis through APIOperation.as_strategy: schemathesis's lazy
# pytest loader (schemathesis.pytest.from_fixture) fails on pytest 9 ("'Function' object has no attribute '_nodeid'").
@pytest.mark.parametrize(
    ("method", "path", "mode"), GENERATED, ids=[f"{m} {p} {mode.value}" for m, p, mode in GENERATED]
)
def test_generated_requests_get_no_5xx_and_conform_to_the_document(
    service_schema: schemathesis.BaseSchema, method: str, path: str, mode: GenerationMode
) -> None:
    operation = service_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def answered_as_documented(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS)

    answered_as_documented()


@pytest.mark.parametrize("content_type", ["multipart/form-data", "application/x-www-form-urlencoded"])
def test_a_form_body_is_a_415_not_a_500(served: Served, content_type: str) -> None:  # noqa: F811
    # Found by schemathesis: BentoML's form parser answers a malformed form with a 500 (see service/json_only.py).
    response = httpx.post(
        f"{served.url}/predict",
        content=b'{"flight": {}}',
        headers={"Content-Type": content_type},
        timeout=30,
    )
    assert response.status_code == 415, response.text
    assert "application/json" in response.json()["error"]


@pytest.mark.parametrize(
    ("sched_dep", "sched_arr"),
    [("0001-01-01T00:10:00", "0001-01-01T02:00:00"), ("9999-12-31T21:10:00", "9999-12-31T23:50:00")],
)
def test_a_schedule_at_the_ends_of_the_calendar_is_not_a_5xx(
    served: Served,  # noqa: F811
    sched_dep: str,
    sched_arr: str,
) -> None:
    # The prediction time is sched_dep minus the lead: on 0001-01-01 that is before the first representable moment.
    flight = {**served.flights[0], "sched_dep": sched_dep, "sched_arr": sched_arr}
    response = httpx.post(f"{served.url}/predict", json={"flight": flight}, timeout=30)
    assert response.status_code < 500, response.text
