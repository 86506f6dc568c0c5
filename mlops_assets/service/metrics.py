"""The service's own Prometheus series, served on BentoML's ``GET /metrics`` next to BentoML's request metrics.

- ``mlops_serving_predictions_total{decision, model_version}``: answered rows, ``decision`` ``delayed`` or
  ``on_time`` (the probability against the version's threshold);
- ``mlops_serving_feature_age_seconds{view}``: the oldest value of the view used by the latest request (prediction
  time minus the value's stamp); ``mlops_serving_feature_missing_total{view}``: rows for which the view had no usable
  value (unknown entity, stale, stamped later, store unavailable);
- ``mlops_serving_shadow_scores_total{shadow_version}`` / ``mlops_serving_shadow_failures_total{shadow_version}``:
  rows the shadow challenger scored, and rows it failed on (their answers were given all the same);
  ``mlops_serving_shadow_seconds``: what the shadow added to each request (its encoding, when not shared, and its
  scoring);
- ``mlops_serving_prediction_log_dropped_rows_total``: rows the prediction log dropped (full queue, failed write).

``prometheus_client`` directly, as BentoML 1.4 asks (``bentoml.metrics`` is deprecated and only forwards to it).
It is imported when the service instance is built, in the worker, where BentoML has already set
``PROMETHEUS_MULTIPROC_DIR``: imported earlier, it would keep its values in memory, where ``/metrics`` (which reads
the multiprocess files) never sees them. Each call does a handful of increments, a few microseconds a request.
"""

from __future__ import annotations

import functools
from collections import Counter as Tally
from collections.abc import Sequence

from mlops_assets.service.scoring import SERVING_VIEWS, Prediction

PREFIX = "mlops_serving"


class ServiceMetrics:
    """A :class:`~mlops_assets.service.runtime.ServingObserver` that records into Prometheus series."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.predictions = Counter(
            f"{PREFIX}_predictions", "Answered rows by decision and champion version", ["decision", "model_version"]
        )
        # The latest request's value, whichever worker served it: an age is a level, not a sum over workers.
        self.feature_age = Gauge(
            f"{PREFIX}_feature_age_seconds",
            "Oldest value of the feature view used by the latest request (prediction time minus its stamp)",
            ["view"],
            multiprocess_mode="mostrecent",
        )
        self.feature_missing = Counter(
            f"{PREFIX}_feature_missing", "Rows whose view had no usable value (missing, stale or unread)", ["view"]
        )
        self.shadow_scores = Counter(f"{PREFIX}_shadow_scores", "Rows the shadow challenger scored", ["shadow_version"])
        self.shadow_failures = Counter(
            f"{PREFIX}_shadow_failures", "Rows the shadow challenger failed on (answered anyway)", ["shadow_version"]
        )
        self.shadow_seconds = Histogram(
            f"{PREFIX}_shadow_seconds",
            "Time the shadow challenger added to a request",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
        )
        self.log_dropped_rows = Counter(
            f"{PREFIX}_prediction_log_dropped_rows", "Rows the prediction log dropped (queue full or write failed)"
        )
        # Every view's series exists from the start, so a dashboard shows 0 missing rather than no data.
        self._missing = {spec.name: self.feature_missing.labels(view=spec.name) for spec in SERVING_VIEWS}
        self._age = {spec.name: self.feature_age.labels(view=spec.name) for spec in SERVING_VIEWS}
        self.log_dropped_rows.inc(0)

    def answered(self, answers: Sequence[Prediction]) -> None:
        decisions = Tally(("delayed" if a.delayed else "on_time", a.model_version) for a in answers)
        for (decision, version), rows in decisions.items():
            self.predictions.labels(decision=decision, model_version=version).inc(rows)
        for view, missing in self._missing.items():
            ages = [age for a in answers if (age := a.feature_age_seconds.get(view)) is not None]
            if ages:
                self._age[view].set(max(ages))
            if len(ages) < len(answers):
                missing.inc(len(answers) - len(ages))

    def shadow_scored(self, version: str, rows: int, seconds: float, failed: bool) -> None:
        (self.shadow_failures if failed else self.shadow_scores).labels(shadow_version=version).inc(rows)
        self.shadow_seconds.observe(seconds)

    def log_dropped(self, rows: int) -> None:
        self.log_dropped_rows.inc(rows)


@functools.cache
def service_metrics() -> ServiceMetrics:
    """The process's one set (a second registration of the same names would raise in ``prometheus_client``)."""
    return ServiceMetrics()
