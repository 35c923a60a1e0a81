"""URL patterns (being built)."""

urlpatterns: list[object] = []
