"""The BentoML service: a thin HTTP shell over :class:`mlops_assets.service.runtime.ServingRuntime`.

Run it with ``bentoml serve mlops_assets.service.service:FlightDelayService --port 3000``; the model, the feature store
and the lake are located by the ``MLOPS_*`` settings. Endpoints (POST, JSON):

- ``/predict`` ``{"flight": {...}}`` and ``/predict_batch`` ``{"flights": [{...}, ...]}`` (up to 1,000 rows);
- ``/status`` ``{}``: what is loaded (model version, threshold and its source) or why not, the alias watcher's
  last poll, last error and number of swaps, the shadow challenger's version and counts, and the prediction log's
  counters (rows queued, written, dropped);
- BentoML's own ``GET /livez`` (process up) and ``GET /readyz`` (503 until the champion and the store are loaded);
- ``GET /metrics``: BentoML's series plus the service's own (:mod:`mlops_assets.service.metrics`).

Every answer carries a ``request_id``: its row in the prediction log (``<lake>/serving/prediction_log``), which also
holds the request, the model inputs as scored, the champion's score and the shadow challenger's (never answered).

A request that fails validation gets BentoML's 400 with pydantic's error list, whose ``loc`` names the field.

The champion alias is re-read every ``MLOPS_SERVING_POLL_SECONDS``: a promotion or ``mlops-assets rollback`` is
served without a restart (see :class:`~mlops_assets.service.runtime.ServingRuntime`).
"""

from __future__ import annotations

from typing import Annotated, Any

import bentoml
from pydantic import Field

from mlops_assets.service.json_only import RejectFormBodies
from mlops_assets.service.metrics import service_metrics
from mlops_assets.service.runtime import NotReadyError, ServingRuntime
from mlops_assets.service.scoring import MAX_BATCH_ROWS, BatchPrediction, FlightRequest, Prediction


@bentoml.service(
    name="flight_delay",
    traffic={"timeout": 30},
    # One worker: /status and the prediction log's counters are per process, and two workers measured no gain on
    # the 2-core target under load (benchmarks/serving.py). More cores: BENTOML_CONFIG_OPTIONS=
    # "services.flight_delay.workers=N" (then /status describes the worker that answered it; /metrics sums them).
    workers=1,
    # The prediction log already records every answered row with its request id; a per-request access-log line
    # costs CPU on the request path for the same information.
    logging={"access": {"enabled": False}},
    # LightGBM's OpenMP threads for a one-row predict cost more than they save, and on a busy node spinning threads
    # wait for cores: single-row scoring measured 5 ms with one thread against 40-48 ms with the default (2 cores
    # under load). The environment of `bentoml serve` overrides this.
    envs=[{"name": "OMP_NUM_THREADS", "value": "1"}],
)
class FlightDelayService:
    def __init__(self) -> None:
        # In the worker (BentoML builds the instance there): the metrics are created where /metrics can see them.
        self.runtime = ServingRuntime(observer=service_metrics())
        self.runtime.load()
        # Also after a failed first load: the watcher retries, so a service started before any champion was promoted
        # becomes ready once one is. The prediction log's writer starts here too, in the worker, after any fork.
        self.runtime.start()

    @bentoml.on_shutdown
    def shut_down(self) -> None:
        # BentoML runs shutdown hooks when the worker stops: the watcher must not start a model load then, and the
        # prediction log writes what it still holds, so a clean stop loses no logged row.
        self.runtime.close()

    def __is_ready__(self) -> bool:
        # BentoML's /readyz calls this: traffic is routed here only once a champion and the store are loaded.
        return self.runtime.ready

    def _predict(self, flights: list[FlightRequest]) -> list[Prediction]:
        try:
            return self.runtime.predict(flights)
        except NotReadyError as exc:
            raise bentoml.exceptions.ServiceUnavailable(str(exc)) from exc

    @bentoml.api(route="/predict")
    def predict(self, flight: FlightRequest) -> Prediction:
        return self._predict([flight])[0]

    @bentoml.api(route="/predict_batch")
    def predict_batch(
        self, flights: Annotated[list[FlightRequest], Field(min_length=1, max_length=MAX_BATCH_ROWS)]
    ) -> BatchPrediction:
        return BatchPrediction(predictions=self._predict(flights))

    @bentoml.api(route="/status")
    def status(self) -> dict[str, Any]:
        return self.runtime.readiness()


# Every API takes JSON: a form body would reach BentoML's form parser, which answers a malformed one with a 500.
FlightDelayService.add_asgi_middleware(RejectFormBodies)
