"""SMS throughput: does one sender's rate limit hold across workers, and is it used fully?

A fake Twilio (``LoopbackTwilio``: Twilio's Messages API on 127.0.0.1, a thread of this
process) takes the messages and notes when each arrives. An SMS campaign of 300 contacts on
a throw-away PostgreSQL database and the configured Redis; the company's sender is limited to
10 messages per second; two fresh Celery worker processes (solo pool, every queue) run it
while this process plays beat (``invitations_dispatch_due`` once a second). The achieved rate
is measured at the provider, from the first message's arrival to the last: (n - 1) / seconds.

Prints the achieved rate and, last, its ratio to the limit. Goal: between 0.95 and 1.0 (the
limit holds globally and is used fully).

Run: ``DATABASE_URL=… REDIS_URL=… python -m bench sms_rate``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from datetime import time as clock_time
from pathlib import Path

from bench._django import bench_database
from bench.send import _start_workers, _stop_workers

COUNT = 300
RATE = 10.0
DISPATCH_EVERY = 1.0


def _run(fake_url: str, logs: Path) -> None:
    from companies.services import company_create, user_create
    from notifications.tests.twilio_fake import ACCOUNT_SID, AUTH_TOKEN
    from nps_saas.celery import app
    from surveys.models import Campaign, CampaignStatus, Contact, Survey, SurveyStatus
    from surveys.services.campaigns import campaign_create
    from surveys.services.dispatch import invitations_dispatch_due

    owner = user_create(email="owner@sms.bench", password=uuid.uuid4().hex)
    company = company_create(name="SMS bench", owner=owner)
    # A fresh sender each run: its bucket lives in Redis. Any hour is sending time here.
    company.sms_sender = f"+1415{int(time.time()) % 10_000_000:07d}"
    company.sms_rate_per_second = RATE
    company.quiet_hours_start, company.quiet_hours_end = clock_time(0, 0), clock_time.max
    company.save()
    survey = Survey.objects.create(company=company, name="Bench", status=SurveyStatus.ACTIVE)
    Contact.objects.bulk_create(
        Contact(company=company, phone=f"+1212555{n:04d}", name=f"P {n}") for n in range(COUNT)
    )
    app.control.purge()
    os.environ.update(
        {
            "SMS_PROVIDER": "twilio",
            "TWILIO_API_URL": fake_url,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        }
    )
    workers = _start_workers(0, logs)  # the email provider port is unused here
    try:
        campaign = campaign_create(
            company=company, survey=survey, audience={"all": True}, channel="sms"
        )
        deadline = time.monotonic() + COUNT / RATE * 3 + 60
        while Campaign.objects.for_company(company).get(pk=campaign.pk).status != (
            CampaignStatus.DONE
        ):
            invitations_dispatch_due()
            for process, hostname in workers:
                if process.poll() is not None:
                    raise RuntimeError(f"worker {hostname} exited; see {logs}")
            if time.monotonic() > deadline:
                raise RuntimeError("the campaign did not finish in time")
            time.sleep(DISPATCH_EVERY)
    finally:
        _stop_workers(workers)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, bench_database():
        from notifications.tests.twilio_fake import LoopbackTwilio
        from nps_saas.celery import app

        app.conf.task_always_eager = False
        with LoopbackTwilio() as fake:
            _run(fake.url, Path(tmp))
        arrivals = sorted(at for at, _to in fake.received)
    if len(arrivals) != COUNT or len(set(fake.recipients)) != COUNT:
        print(f"sent {len(arrivals)} messages to {len(set(fake.recipients))} numbers", flush=True)
        sys.exit(1)
    seconds = arrivals[-1] - arrivals[0]
    achieved = (COUNT - 1) / seconds
    print(f"{COUNT} SMS, two workers, sender limit {RATE:g}/s: {seconds:.1f} s")
    print(f"achieved rate: {achieved:.2f} messages/s")
    print(f"ratio to the limit: {achieved / RATE:.3f} (goal 0.95-1.0)")


if __name__ == "__main__":
    main()
