"""URL configuration of the service."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from revocation.api import api
from revocation.views import healthz

urlpatterns = [
    path("", RedirectView.as_view(url="/sessions/", permanent=False)),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    # JSON API; OpenAPI at /api/openapi.json, interactive docs at /api/docs.
    path("api/", api.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("revocation.urls")),
]
