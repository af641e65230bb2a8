"""This service's worker runtime: beat schedule and installer, locks, demo data."""
