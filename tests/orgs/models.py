"""A test-only organisation model, the kind a project maps through a scope resolver."""

from django.conf import settings
from django.db import models


class Org(models.Model):
    """An organisation."""

    name = models.CharField(max_length=100)

    class Meta:
        app_label = "orgs"

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's membership of an organisation."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)

    class Meta:
        app_label = "orgs"

    def __str__(self) -> str:
        return f"{self.user_id} in {self.org_id}"
