"""Link Django sessions to their users and revoke them at scale."""
