"""A year of made-up but plausible answers for the demo company ``make run`` opens with.

``demo_history_create(company=…, owner=…)`` adds, in one pass of bulk inserts:

* three surveys: the customer survey "After your visit" (email, SMS, web link), "Mobile app"
  (web link and email) and the anonymous eNPS "Team pulse" (monthly, email);
* about 700 customers (cities, plan, visits per month, yearly spend: segments and revenue at
  risk have something to show) and 40 employees (team);
* invitations for every email/SMS answer plus the ones nobody answered, with delivery and
  open times (the funnel), and the answers themselves: about 2,500 over the last 365 days,
  an NPS that climbs through the year with a dip in the summer, cities that differ, comments
  in English, Russian and Kazakh in the respondent's language;
* follow-ups on the latest detractors in the triage inbox, a few in progress or resolved.

Everything comes from one seeded random generator: the same history every time. The answers
are inserted directly (not through ``response_record``): they are history, so no alert or
email is triggered; the rollups follow through their database triggers like for any insert.
"""

from __future__ import annotations

import random
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from companies.models import Company, User
from dashboards.insights import dashboard_settings_update
from responses.models import Response, category_of
from surveys.models import (
    Contact,
    Invitation,
    InvitationStatus,
    Survey,
    SurveyKind,
    SurveyStatus,
)
from surveys.services.surveys import survey_create, survey_set_status
from surveys.tokens import new_nonce, token_for, token_hash

SEED = 20260622  # the day Delighted closed: any fixed number would do
DAYS = 365
CUSTOMERS = 700
EMPLOYEES = 40

# city: (weight, language choices, NPS shift in score points)
CITIES: dict[str, tuple[int, tuple[str, ...], float]] = {
    "Amsterdam": (30, ("en",), 0.3),
    "Rotterdam": (18, ("en",), -0.6),
    "Utrecht": (12, ("en",), 0.1),
    "Almaty": (16, ("ru", "kk", "kk"), 0.2),
    "Astana": (12, ("kk", "ru"), 0.4),
    "Moscow": (12, ("ru",), -0.3),
}
PLANS = (("regular", 70), ("loyalty", 30))
TEAMS = ("Baristas", "Kitchen", "Delivery", "Office")

# First names with their gender: a Russian or Kazakh surname agrees with it (Соколов,
# Соколова; Серікұлы, Серікқызы).
FIRST_NAMES: dict[str, tuple[tuple[str, str], ...]] = {
    "en": tuple(
        (name, "any")
        for name in (
            "Anna",
            "Tom",
            "Sophie",
            "Lucas",
            "Emma",
            "Daan",
            "Julia",
            "Noah",
            "Eva",
            "Sem",
        )
    ),
    "ru": (
        ("Иван", "m"),
        ("Мария", "f"),
        ("Алексей", "m"),
        ("Ольга", "f"),
        ("Дмитрий", "m"),
        ("Анна", "f"),
        ("Сергей", "m"),
        ("Елена", "f"),
    ),
    "kk": (
        ("Айгерим", "f"),
        ("Нұрлан", "m"),
        ("Дәурен", "m"),
        ("Гүлнар", "f"),
        ("Ерлан", "m"),
        ("Аружан", "f"),
        ("Қанат", "m"),
        ("Әлия", "f"),
    ),
}
SURNAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "any": ("de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "Mulder", "Bos"),
    },
    "ru": {
        "m": ("Петров", "Иванов", "Смирнов", "Кузнецов", "Попов", "Соколов"),
        "f": ("Петрова", "Иванова", "Смирнова", "Кузнецова", "Попова", "Соколова"),
    },
    "kk": {
        "m": ("Сейітов", "Серікұлы", "Жұмабаев", "Әбенов", "Қасымов", "Нұрланұлы"),
        "f": ("Сейітова", "Серікқызы", "Жұмабаева", "Әбенова", "Қасымова", "Нұрланқызы"),
    },
}


def _person_name(rng: random.Random, language: str) -> str:
    first, gender = rng.choice(FIRST_NAMES[language])
    return f"{first} {rng.choice(SURNAMES[language][gender])}"


# Comments per language and category; about half of the answers carry one.
COMMENTS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "promoter": (
            "Best flat white in town, and the staff remember my name.",
            "Always friendly and quick, even on Monday mornings.",
            "Love the new seasonal menu!",
            "Cosy place to work for an hour, great wifi.",
            "The loyalty card is actually worth it.",
        ),
        "passive": (
            "Good coffee, but the queue at 8:30 is long.",
            "Nice, a bit pricey for what it is.",
            "Fine. Would like more vegan pastries.",
            "Coffee was good, the music was too loud.",
        ),
        "detractor": (
            "Waited 15 minutes for a cappuccino and it was cold.",
            "The app charged me twice and nobody answered my email.",
            "Tables were dirty and the bins overflowing.",
            "Rude staff at the counter this morning.",
            "My delivery arrived 40 minutes late.",
        ),
    },
    "ru": {
        "promoter": (
            "Лучший кофе в районе, бариста всегда приветливы.",
            "Быстро, вкусно и уютно. Спасибо!",
            "Очень нравится новое сезонное меню.",
        ),
        "passive": (
            "Кофе хороший, но цены высоковаты.",
            "Нормально, но утром большая очередь.",
            "Хотелось бы больше десертов без сахара.",
        ),
        "detractor": (
            "Ждал заказ двадцать минут, кофе был холодный.",
            "Приложение списало деньги дважды, поддержка молчит.",
            "Грязные столы и громкая музыка.",
        ),
    },
    "kk": {
        "promoter": (
            "Қаладағы ең дәмді кофе, қызметкерлер өте сыпайы.",
            "Жылдам әрі жайлы, рахмет!",
            "Жаңа мәзір маған қатты ұнады.",
        ),
        "passive": (
            "Кофе жақсы, бірақ бағасы қымбаттау.",
            "Таңертең кезек ұзын болады.",
            "Жақсы, бірақ тәттілер аз.",
        ),
        "detractor": (
            "Тапсырысты жиырма минут күттім, кофе суып қалды.",
            "Қосымша ақшаны екі рет алды, ешкім жауап бермеді.",
            "Үстелдер лас, музыка тым қатты.",
        ),
    },
}
TEAM_COMMENTS = {
    "promoter": ("Great team, I feel trusted.", "Отличная команда и гибкий график."),
    "passive": ("Okay, but the rota changes too late.", "Жалақы орташа, бірақ ұжым жақсы."),
    "detractor": ("Too many double shifts lately.", "Слишком много переработок в выходные."),
}


@dataclass
class _Person:
    contact: Contact
    city: str
    shift: float


def _weighted(rng: random.Random, pairs: Any) -> Any:
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights=weights)[0]


def _score(rng: random.Random, *, day: int, shift: float) -> int:
    """A score whose mean climbs through the year (≈ 7.7 → 8.6: NPS ≈ 5 → 40) with a summer
    dip."""
    progress = day / DAYS
    mean = 7.7 + 0.9 * progress + shift
    if 0.45 < progress < 0.58:
        mean -= 0.7  # the summer the espresso machine kept breaking
    value = rng.gauss(mean, 1.9)
    return max(0, min(10, round(value)))


def _moment(rng: random.Random, day: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """A time on ``day`` during opening hours (07:00–21:00 local)."""
    minutes = rng.randint(7 * 60, 21 * 60)
    return datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(minutes=minutes)


def _people(rng: random.Random, company: Company) -> list[_Person]:
    people: list[_Person] = []
    contacts: list[Contact] = []
    for n in range(CUSTOMERS):
        city = _weighted(rng, ((c, w) for c, (w, _l, _s) in CITIES.items()))
        _weight, languages, shift = CITIES[city]
        language = rng.choice(languages)
        plan = _weighted(rng, PLANS)
        name = _person_name(rng, language)
        visits = max(1, round(rng.lognormvariate(1.2, 0.6)))
        spend = round(visits * 12 * rng.uniform(3.5, 7.5), 2)
        contact = Contact(
            company=company,
            email=f"customer{n}@example.com",
            phone=f"+3161{n:07d}" if city in ("Amsterdam", "Rotterdam", "Utrecht") else None,
            name=name,
            language=language,
            external_id=f"demo-{n:04d}",
            properties={
                "city": city,
                "plan": plan,
                "visits_per_month": visits,
                "yearly_spend": spend,
            },
        )
        contacts.append(contact)
        people.append(_Person(contact, city, shift + (0.3 if plan == "loyalty" else 0.0)))
    for n in range(EMPLOYEES):
        team = TEAMS[n % len(TEAMS)]
        language = rng.choice(("en", "ru", "kk"))
        contact = Contact(
            company=company,
            email=f"staff{n}@example.com",
            name=_person_name(rng, language),
            language=language,
            properties={"team": team, "employee": True},
        )
        contacts.append(contact)
        people.append(_Person(contact, team, -0.8 if team == "Delivery" else 0.0))
    Contact.objects.bulk_create(contacts)
    return people


def _surveys(company: Company, owner: User, visit: Survey) -> tuple[Survey, Survey, Survey]:
    app = survey_create(company=company, name="Mobile app", created_by=owner)
    survey_set_status(company=company, survey=app, status=SurveyStatus.ACTIVE)
    pulse = survey_create(
        company=company, name="Team pulse", kind=SurveyKind.ENPS, created_by=owner
    )
    survey_set_status(company=company, survey=pulse, status=SurveyStatus.ACTIVE)
    return visit, app, pulse


def _invitation(
    company: Company, survey: Survey, person: _Person, sent_at: datetime, channel: str
) -> Invitation:
    nonce = new_nonce()
    return Invitation(
        company=company,
        survey=survey,
        contact=person.contact,
        channel=channel,
        language=person.contact.language,
        token_nonce=nonce,
        token_hash=token_hash(token_for(nonce)),
        status=InvitationStatus.SENT,
        scheduled_for=sent_at,
        sent_at=sent_at,
        delivered_at=sent_at + timedelta(seconds=20),
        expires_at=sent_at + timedelta(days=survey.link_valid_days),
        created_at=sent_at,
    )


@dataclass
class _Answer:
    invitation: Invitation | None
    survey: Survey
    person: _Person
    day: int
    at: datetime
    channel: str


@dataclass
class _Year:
    """What the generator has planned so far."""

    rng: random.Random
    zone: zoneinfo.ZoneInfo
    company: Company
    invitations: list[Invitation]
    answers: list[_Answer]

    def invite(self, survey: Survey, person: _Person, sent: datetime, channel: str) -> Invitation:
        invitation = _invitation(self.company, survey, person, sent, channel)
        self.invitations.append(invitation)
        return invitation


def _plan_day(
    year: _Year,
    day: int,
    date: datetime,
    *,
    surveys: tuple[Survey, Survey, Survey],
    customers: list[_Person],
    staff: list[_Person],
) -> None:
    rng, zone = year.rng, year.zone
    visit, app, pulse = surveys
    weekend = date.weekday() >= 5
    # The visit survey: about 5 answers a day (more at weekends) out of ~9 invitations.
    for _ in range(rng.randint(6, 9) + (4 if weekend else 0)):
        person = rng.choice(customers)
        channel = "sms" if person.contact.phone and rng.random() < 0.35 else "email"
        sent = _moment(rng, date, zone)
        invitation = year.invite(visit, person, sent, channel)
        if rng.random() < 0.55:
            answered = sent + timedelta(minutes=rng.randint(2, 600))
            year.answers.append(_Answer(invitation, visit, person, day, answered, channel))
        elif rng.random() < 0.5:
            invitation.opened_at = sent + timedelta(minutes=rng.randint(5, 300))
    # The web link on the receipts: ~1 a day.
    for _ in range(rng.choice((0, 1, 1, 2))):
        year.answers.append(
            _Answer(None, visit, rng.choice(customers), day, _moment(rng, date, zone), "link")
        )
    # The app survey: ~2 a day, from the app's web link and an email now and then.
    for _ in range(rng.choice((1, 2, 2, 3))):
        person = rng.choice(customers)
        if rng.random() < 0.3:
            sent = _moment(rng, date, zone)
            invitation = year.invite(app, person, sent, "email")
            answered = sent + timedelta(minutes=rng.randint(2, 240))
            year.answers.append(_Answer(invitation, app, person, day, answered, "email"))
        else:
            year.answers.append(_Answer(None, app, person, day, _moment(rng, date, zone), "link"))
    # Team pulse: the first Monday of the month, to every employee; ~70% answer.
    if date.weekday() == 0 and date.day <= 7:
        sent = date.replace(hour=9)
        for person in staff:
            invitation = year.invite(pulse, person, sent, "email")
            if rng.random() < 0.7:
                answered = sent + timedelta(hours=rng.randint(1, 72))
                year.answers.append(_Answer(invitation, pulse, person, day, answered, "email"))


def _response(
    rng: random.Random, answer: _Answer, company: Company, *, browser_key: str | None, now: datetime
) -> Response:
    contact = answer.person.contact
    anonymous = answer.survey.kind == SurveyKind.ENPS
    score = _score(rng, day=answer.day, shift=answer.person.shift)
    category = category_of(score)
    comment = ""
    if rng.random() < (0.7 if category == "detractor" else 0.45):
        pool = TEAM_COMMENTS if anonymous else COMMENTS[contact.language]
        comment = rng.choice(pool[category])
    at = min(answer.at, now)
    identified = answer.invitation is not None
    return Response(
        company=company,
        survey=answer.survey,
        invitation=answer.invitation,
        contact=contact if identified and not anonymous else None,
        score=score,
        category=category,
        comment=comment,
        channel=answer.channel,
        language=contact.language,
        contact_properties=dict(contact.properties) if identified else {},
        browser_key=browser_key,
        created_at=at,
        updated_at=at + timedelta(minutes=rng.randint(0, 2)),
    )


@transaction.atomic
def demo_history_create(*, company: Company, owner: User, visit_survey: Survey) -> int:
    """Fill ``company`` with a year of history (see the module docstring); the number of
    answers created. ``visit_survey`` is the demo's existing customer survey."""
    rng = random.Random(SEED)  # noqa: S311 (made-up demo data, not security)
    zone = zoneinfo.ZoneInfo(company.time_zone or "UTC")
    people = _people(rng, company)
    customers = [p for p in people if not p.contact.properties.get("employee")]
    staff = [p for p in people if p.contact.properties.get("employee")]
    surveys = _surveys(company, owner, visit_survey)
    today = timezone.localtime(timezone=zone).replace(hour=0, minute=0, second=0, microsecond=0)
    year = _Year(rng, zone, company, [], [])
    for day in range(DAYS):
        date = today - timedelta(days=DAYS - day)
        _plan_day(year, day, date, surveys=surveys, customers=customers, staff=staff)
    now = timezone.now()
    for answer in year.answers:
        if answer.invitation is not None:
            answer.invitation.answered_at = min(answer.at, now)
            answer.invitation.opened_at = answer.invitation.opened_at or min(answer.at, now)
    Invitation.objects.bulk_create(year.invitations, batch_size=1000)
    responses = [
        _response(
            rng,
            answer,
            company,
            browser_key=f"demo-browser-{n}" if answer.invitation is None else None,
            now=now,
        )
        for n, answer in enumerate(year.answers)
    ]
    Response.objects.bulk_create(responses, batch_size=1000)
    _followups(company, owner)
    # What the customers' yearly spend says about the detractors (revenue at risk).
    # ... and the properties its managers segment by, rolled up like channels.
    dashboard_settings_update(
        company=company,
        revenue_property="yearly_spend",
        peer_benchmark=False,
        segment_properties=["city", "plan", "team"],
    )
    return len(responses)


# The latest detractors of the customer survey that get a follow-up, and what became of some.
FOLLOWUPS = 12
FOLLOWUP_NOTES = (
    "Called her: the machine was being descaled that morning. Offered a free coffee.",
    "Refund issued through the app's payment provider; waiting for him to confirm.",
)


def _followups(company: Company, owner: User) -> None:
    """Follow-ups on the latest detractors, opened as the default rule would (without its
    emails: the demo sends nothing), a few of them already worked on."""
    from responses.alerts import alert_rules_for
    from responses.followups import followup_add_note, followup_open_for_alert, followup_set_status
    from responses.models import AlertFiring, FollowupStatus, ResolutionReason

    rules = [rule for rule in alert_rules_for(company=company) if rule.is_default]
    detractors = list(
        Response.objects.for_company(company)
        .filter(category="detractor", contact__isnull=False, survey__anonymous=False)
        .exclude(comment="")
        .order_by("-created_at")[:FOLLOWUPS]
    )
    for n, response in enumerate(detractors):
        AlertFiring.objects.bulk_create(
            AlertFiring(company=company, rule=rule, response=response, score=response.score)
            for rule in rules
        )
        followup = followup_open_for_alert(company=company, response=response, rules=rules)
        if followup is None:
            continue
        if n in (2, 5):
            followup_set_status(
                company=company, followup=followup, status=FollowupStatus.IN_PROGRESS, actor=owner
            )
            followup_add_note(
                company=company, followup=followup, body=FOLLOWUP_NOTES[n == 5], actor=owner
            )
        elif n in (7, 9, 10):
            followup_set_status(
                company=company,
                followup=followup,
                status=FollowupStatus.RESOLVED,
                actor=owner,
                resolution=ResolutionReason.CONTACTED if n == 7 else ResolutionReason.FIXED,
            )
