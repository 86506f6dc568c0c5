"""Pure logic with no Dagster import: schemas, windows, metrics, drift statistics, IO helpers."""
