"""URL configuration of the service."""

from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.urls import include, path
from django.views.generic import RedirectView

from revocation.api import api
from revocation.client import ask_for_client_hints
from revocation.views import healthz

urlpatterns = [
    path("", RedirectView.as_view(url="/sessions/", permanent=False)),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    # JSON API; OpenAPI at /api/openapi.json, interactive docs at /api/docs.
    path("api/", api.urls),
    # Django's login view, asking the browser for the client hints that name its device
    # (the form's POST then carries them); before the rest of django.contrib.auth's URLs.
    path("accounts/login/", ask_for_client_hints(LoginView.as_view()), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("revocation.urls")),
]
