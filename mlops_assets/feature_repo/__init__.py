"""Feast feature repository: entity and feature-view definitions only (Feast imports every module here)."""
