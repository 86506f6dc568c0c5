"""Dagster definitions per domain; ``mlops_assets.definitions`` assembles them."""
