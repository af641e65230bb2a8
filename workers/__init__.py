"""This service's runtime around the revocation app: beat schedule, Redis fix, demo data."""
