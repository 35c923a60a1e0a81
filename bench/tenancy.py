"""The tenancy choke point must not make a page's cost grow with the data.

Measures one page of ``GET /api/v1/members/`` (API key auth, company scoping, cursor
pagination) for a company with 60 members and for one with 2,000 (both fill a 50-row page),
with another company of 2,000 members beside them. Prints the queries per page for both and,
last, the time ratio large/small: close to 1.0 means the page costs the same at any size.
"""

from __future__ import annotations

import secrets
import statistics
import time

from bench._django import bench_database

ROUNDS = 200
UNUSABLE_PASSWORD = "!"  # noqa: S105  (Django's "no password" marker: these members never log in)


def _company_with_members(name: str, count: int) -> tuple[object, str]:
    from companies.models import Membership, Role, User
    from companies.services import api_key_create, company_create, user_create

    owner = user_create(email=f"owner@{name}.bench", password=secrets.token_urlsafe(16))
    company = company_create(name=name, owner=owner)
    users = User.objects.bulk_create(
        User(email=f"m{i}@{name}.bench", password=UNUSABLE_PASSWORD) for i in range(count - 1)
    )
    Membership.objects.bulk_create(
        Membership(company=company, user=user, role=Role.VIEWER) for user in users
    )
    return company, api_key_create(company=company, name="bench").key


def _page_seconds(key: str) -> tuple[float, int]:
    from django.db import connection
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    queries: list[str] = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        assert client.get("/api/v1/members/").status_code == 200
    timings = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        client.get("/api/v1/members/")
        timings.append(time.perf_counter() - start)
    return statistics.median(timings), len(queries)


def main() -> None:
    with bench_database():
        _company_with_members("neighbour", 2000)
        _small, small_key = _company_with_members("small", 60)
        _large, large_key = _company_with_members("large", 2000)
        small_s, small_q = _page_seconds(small_key)
        large_s, large_q = _page_seconds(large_key)
    print(f"members page, 60 members:    {small_s * 1000:.2f} ms median, {small_q} queries")
    print(f"members page, 2,000 members: {large_s * 1000:.2f} ms median, {large_q} queries")
    print(f"ratio large/small: {large_s / small_s:.2f}")
