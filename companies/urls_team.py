"""Team pages: members, teammate invitations, API keys (under /c/<company_slug>/)."""

urlpatterns: list[object] = []
