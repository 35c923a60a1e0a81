"""Company pages reached without a company in the URL (the link carries its own scope)."""

urlpatterns: list[object] = []
