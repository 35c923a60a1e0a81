"""Where a person's data lives, and what erasure does with each place.

``tests`` (privacy/tests/test_inventory.py) finds every field that can hold a respondent's
identity (a foreign key to a contact, an email field, a field named like an email, a phone or
an address) and fails until it is listed here: a new place cannot be forgotten by erasure.
Listing a field is a promise that ``privacy.selectors`` exports it and ``privacy.services``
erases it (and a test there proves it), or a reason why it is not a respondent's.
"""

from __future__ import annotations

# "app.Model.field" → what export and erasure do with it.
PERSONAL_DATA: dict[str, str] = {
    "surveys.Contact.email": "exported; the contact is deleted (contacts_erase)",
    "surveys.Contact.phone": "exported; the contact is deleted (contacts_erase)",
    "surveys.Contact.external_id": "exported; the contact is deleted (contacts_erase)",
    "surveys.Contact.properties": "exported; the contact is deleted (contacts_erase)",
    "surveys.Invitation.contact": "exported; deleted with their timeline (contacts_erase)",
    "surveys.Invitation.properties": "exported; deleted (contacts_erase)",
    "surveys.AutopilotMember.contact": "exported; deleted (contacts_erase)",
    "surveys.ContactImport.file": "rows naming them taken out (stored_files_erase)",
    "surveys.ContactImport.error_report": "rows naming them taken out (stored_files_erase)",
    "surveys.ContactImport.samples": "values naming them dropped (import_records_erase)",
    "surveys.ContactImport.errors": "rows naming them dropped (import_records_erase)",
    "responses.Response.contact": "exported; unlinked, the score kept (responses_anonymise)",
    "responses.Response.comment": "exported; emptied (responses_anonymise)",
    "responses.Response.contact_properties": "exported; emptied (responses_anonymise)",
    "responses.Followup.seen_comment": "exported; the follow-up deleted (responses_anonymise)",
    "responses.FollowupEvent.body": "exported; deleted with the follow-up",
    "notifications.Delivery.to": "exported; deleted or blanked (deliveries_erase)",
    "notifications.Suppression.address": "exported; kept as a hash only (suppressions_hash)",
    "notifications.WebhookMessage.payload": "deleted when it names them (webhook_messages_erase)",
    "notifications.OutboxMessage.to": "deleted (outbox_erase; the embedded default only)",
    "delighted_compat.DelightedResponse.person_id": "exported; emptied (responses_anonymise)",
    "delighted_compat.DelightedImport.file": "rows naming them taken out (stored_files_erase)",
    "delighted_compat.DelightedImport.error_report": "rows taken out (stored_files_erase)",
    "widget.WidgetView.contact": "exported; deleted with its page address (contacts_erase)",
    "dashboards.RollupDelta.properties": "the answer's snapshot: folded away after erasure",
}

# Fields that look like a person's but belong to the company's team or settings.
NOT_A_RESPONDENTS: dict[str, str] = {
    "companies.User.email": "a member's login, not a respondent's",
    "companies.Company.reply_to": "the company's own address",
    "companies.TeamInvite.email": "a teammate invited to the company",
    "responses.AlertRule.email_roles": "roles of members an alert emails",
    "responses.AlertRule.email_member_ids": "members an alert emails",
    "responses.AlertRule.email_addresses": "the team's addresses an alert emails",
    "responses.AlertFiring.email_status": "the state of an alert's emails to the team",
    "responses.AlertFiring.email_woken_at": "the state of an alert's emails to the team",
    "responses.AlertFiring.email_not_before": "the state of an alert's emails to the team",
    "dashboards.DigestAddress.email": "a team address that gets the digest",
    # The audit log is about the team: who changed what, from where. A respondent is never
    # its actor, and their export or erasure is logged by the kind of identifier only.
    "audit.AuditEntry.ip": "the address a member or API key acted from, never a respondent's",
    "audit.AuditEntry.actor_label": "a member's email or an API key's name",
    "audit.AuditEntry.target_label": "what was changed (a survey, a member, a domain)",
}
