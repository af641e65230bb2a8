"""The scope resolver a project would write for its organisation model."""

from revocation.scopes import field_resolver

org_members = field_resolver("orgs.Membership", user_field="user_id", scope_field="org_id")
