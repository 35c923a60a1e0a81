"""News from responses for other apps (dashboards, alerts), sent after the transaction commits.

response_saved: kwargs ``company_id``, ``response_id`` (pk), ``created`` (False when an answer
was changed), ``previous_score`` (None when created).
"""

from django.dispatch import Signal

response_saved = Signal()
