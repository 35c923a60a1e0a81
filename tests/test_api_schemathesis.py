"""Schemathesis over ``/api/schema/``: every operation, a full-access key, the WSGI app.

A bounded, seeded (derandomized) run: each operation gets the schema's coverage cases
(boundaries, missing and wrong-typed values, positive and negative) and a few fuzzed ones.
Every response must be documented (status, content type, body shape), no request may end in
a 500, and what the schema calls invalid must be refused. Path parameters of positive cases
point at real objects of the key's company half the time, so the 200 paths are walked too.

Not checked: ``positive_data_acceptance``. What the schema allows is still refused where no
schema can say it: ids that must exist (``survey``), opaque cursors, cross-field rules
(``until`` after ``since``, an email for the email channel), duplicates (a pending
invitation). Refusing unknown keys, the one class of such findings a schema can express, is
declared (``additionalProperties: false``) and tested in test_api_schema_truth.py.

No network: requests go to the WSGI app in this process, in the test's transaction. The
schema is built at import without the database (Schemathesis's lazy ``from_fixture`` sets
``Node._nodeid``, which pytest 9 no longer has). About 30 s of CPU for the 28 operations;
no Hypothesis deadline, so a slow machine is slower, never failing.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from companies.services import api_key_create
from conftest import make_company
from tests.openapi import load_schema
from tests.personas import URL_KWARG_FACTORIES

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


schema = load_schema()
schema.config.seed = 20261207
# Unknown query parameters and headers are ignored (as by most HTTP APIs), not refused.
schema.config.generation.update(allow_extra_parameters=False)


@pytest.fixture(autouse=True)
def _in_process_app(db: None) -> Iterator[None]:
    # The WSGI app runs in the test's thread and transaction: like Django's test client, keep
    # its request signals from closing the test's database connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def full_key(db: None, settings: Any) -> dict[str, Any]:
    # Thousands of requests in a minute: the per-key rate limit is tested elsewhere.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": None},
    }
    company = make_company("Schema Co", "owner@schema.test")
    issued = api_key_create(company=company, name="schemathesis")
    ids = {name: make(company) for name, make in URL_KWARG_FACTORIES.items()}
    return {"key": issued.key, "ids": ids}


@schema.parametrize()
@hypothesis.settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_api_keeps_its_schema(case: Any, full_key: dict[str, Any]) -> None:
    if case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE:
        # Half of the valid cases aim at real objects (the rest at unknown ids: 404).
        for name, value in list(case.path_parameters.items()):
            if name in full_key["ids"] and zlib.crc32(str(value).encode()) % 2 == 0:
                case.path_parameters[name] = full_key["ids"][name]
    case.call_and_validate(headers={"Authorization": f"Bearer {full_key['key']}"}, checks=CHECKS)
