"""Writes of the surveys app, one module per concern (keyword-only, the company explicit).

- ``contacts``: normalising addresses and properties; create, update, delete contacts.
- ``surveys``: the survey's field rules; create, edit, move between statuses, delete.
- ``links``: the answer links an invitation carries.
- ``invitations``: a new invitation, its timeline, the throttle window, channels, addresses.
- ``campaigns``: create a campaign, expand its audience into invitations, done, cancel.
- ``send``: claim invitations, hand them to the post office, record the results.
- ``dispatch``: the periodic jobs across companies (due sends, reminders, the stale sweep).
- ``triggers``: the transactional trigger (one person, now or after a delay).
- ``autopilot``: recurring surveys: a survey's programme per channel, its members, the
  dispatcher that asks each member when due.

Import from the module that owns a name: this package re-exports nothing.
"""
