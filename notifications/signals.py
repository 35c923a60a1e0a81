"""News from the post office to the layers above it (surveys, responses), which connect here.

Both are sent after the database transaction that caused them commits.
"""

from __future__ import annotations

from django.dispatch import Signal

# A delivery changed status (sent, failed, suppressed, or a provider webhook: delivered,
# opened, clicked, bounced, complained...). kwargs: company_id, delivery_id (Delivery pk),
# status (a DeliveryStatus value), metadata (the caller's dict given at send time, e.g.
# {"invitation": "<public id>"}), occurred_at (aware datetime).
message_status_changed = Signal()

# An address was newly suppressed for a company. kwargs: company_id, channel, address
# (normalised), reason (a SuppressionReason value).
address_suppressed = Signal()
