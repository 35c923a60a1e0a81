"""Template tags of the responses app for pages of lower layers.

A surveys template (the contact page) may ``{% load responses_tags %}``: templates resolve
tags from any installed app, so the Python imports still point responses → surveys.
"""

from __future__ import annotations

from typing import Any

from django import template

from responses.selectors import CONTACT_RESPONSES_LIMIT, contact_responses
from surveys.models import Contact

register = template.Library()


@register.inclusion_tag("responses/_contact_responses.html", name="contact_responses")
def contact_responses_card(contact: Contact) -> dict[str, Any]:
    """The contact's responses (scoped by the contact's own company; one query)."""
    responses = contact_responses(company=contact.company, contact=contact)
    return {
        "responses": responses,
        "limited": len(responses) >= CONTACT_RESPONSES_LIMIT,
    }
