"""Contact pages under /c/<company_slug>/contacts/."""

app_name = "contacts"

urlpatterns: list[object] = []
