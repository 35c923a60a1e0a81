"""News from responses for other apps (alerts, …), sent after the transaction commits.

response_saved: kwargs ``company_id``, ``response_id`` (pk), ``created`` (False when an answer
was changed), ``previous_score`` (None when created).

Dashboards' rollups do not depend on this signal: database triggers installed by the
dashboards app (dashboards/migrations/0002_rollup_triggers.py) count every insert, change and
delete of a response, including bulk writes and cascades that no signal would report.
"""

from django.dispatch import Signal

response_saved = Signal()
