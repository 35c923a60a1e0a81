"""Response pages under /c/<company_slug>/responses/."""

app_name = "responses"

urlpatterns: list[object] = []
