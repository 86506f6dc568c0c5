"""The BentoML service: a thin HTTP shell over :class:`mlops_assets.service.runtime.ServingRuntime`.

Run it with ``bentoml serve mlops_assets.service.service:FlightDelayService --port 3000``; the model, the feature store
and the lake are located by the ``MLOPS_*`` settings. Endpoints (POST, JSON):

- ``/predict`` ``{"flight": {...}}`` and ``/predict_batch`` ``{"flights": [{...}, ...]}`` (up to 1,000 rows);
- ``/status`` ``{}``: what is loaded (model version, threshold and its source) or why not, and the alias watcher's
  last poll, last error and number of swaps;
- BentoML's own ``GET /livez`` (process up) and ``GET /readyz`` (503 until the champion and the store are loaded).

A request that fails validation gets BentoML's 400 with pydantic's error list, whose ``loc`` names the field.

The champion alias is re-read every ``MLOPS_SERVING_POLL_SECONDS``: a promotion or ``mlops-assets rollback`` is
served without a restart (see :class:`~mlops_assets.service.runtime.ServingRuntime`).
"""

from __future__ import annotations

from typing import Annotated, Any

import bentoml
from pydantic import Field

from mlops_assets.service.runtime import NotReadyError, ServingRuntime
from mlops_assets.service.scoring import MAX_BATCH_ROWS, BatchPrediction, FlightRequest, Prediction


@bentoml.service(name="flight_delay", traffic={"timeout": 30})
class FlightDelayService:
    def __init__(self) -> None:
        self.runtime = ServingRuntime()
        self.runtime.load()
        # Also after a failed first load: the watcher retries, so a service started before any champion was promoted
        # becomes ready once one is.
        self.runtime.start_watching()

    @bentoml.on_shutdown
    def stop_watching(self) -> None:
        # BentoML runs shutdown hooks when the worker stops: the watcher must not start a model load then.
        self.runtime.stop()

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
