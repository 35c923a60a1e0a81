"""Survey pages under /c/<company_slug>/surveys/."""

app_name = "surveys"

urlpatterns: list[object] = []
