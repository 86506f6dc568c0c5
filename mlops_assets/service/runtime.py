"""The serving runtime: the champion model, the online features and the route reference, loaded once per process.

Plain Python (no BentoML) so tests and benchmarks can drive it directly; :mod:`mlops_assets.service.service` wraps it.
Everything it reads is located by :mod:`mlops_assets.settings`. MLflow is reached through an ``MlflowClient`` bound
to the settings' URIs, never through MLflow's process-wide tracking URI.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_assets.lib.evaluation_report import report_artifact
from mlops_assets.lib.model_artifacts import LoadedModel, load_version
from mlops_assets.lib.model_registry import CHAMPION, alias_version
from mlops_assets.service.scoring import (
    SERVING_VIEWS,
    FlightRequest,
    OnlineValues,
    Prediction,
    RouteReference,
    assemble,
    build_inputs,
    entity_rows,
    report_threshold,
    request_frame,
)
from mlops_assets.settings import Settings, load_settings

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from mlops_assets.lib.online import OnlineFeatureReader


class NotReadyError(RuntimeError):
    """The service cannot answer yet (no champion, no online store); the message names what to run."""


class OnlineFeatures:
    """The serving views' values through :class:`~mlops_assets.lib.online.OnlineFeatureReader`, plus the stamp of
    each stored row, which the reader does not return and the answer reports as the feature's age."""

    def __init__(self, reader: OnlineFeatureReader, store: Any) -> None:
        self._reader = reader
        self._store = store
        self._config = store.config
        self._sqlite: sqlite3.Connection | None = None

    def fetch(self, rows: Sequence[Mapping[str, Any]]) -> OnlineValues:
        from mlops_assets.lib.online import OnlineLookupError

        values: dict[str, list[Any]] = {}
        stamps: dict[str, list[datetime | None]] = {}
        unavailable: dict[str, str] = {}
        # One read per view (as the reader does internally anyway), so a view missing from the store (never
        # materialised or pushed) degrades that view to missing values instead of failing the request.
        for spec in SERVING_VIEWS:
            try:
                values |= self._reader.read([f"{spec.name}:{name}" for name in spec.features], rows)
                stamps[spec.name] = self._event_times(spec.name, spec.join_key, rows)
            except OnlineLookupError as exc:
                unavailable[spec.name] = str(exc)
                values |= {name: [None] * len(rows) for name in spec.features}
                stamps[spec.name] = [None] * len(rows)
        return OnlineValues(values=values, event_times=stamps, unavailable=unavailable)

    def _event_times(self, view: str, join_key: str, rows: Sequence[Mapping[str, Any]]) -> list[datetime | None]:
        from feast.infra.key_encoding_utils import serialize_entity_key
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        keys = [EntityKey(join_keys=[join_key], entity_values=[Value(string_val=str(row[join_key]))]) for row in rows]
        if self._config.online_store.type != "sqlite":
            from feast.infra.online_stores.helpers import get_online_store_from_config

            # Redis (production): the store's own read returns each row's stamp next to its values.
            lookup = self._store.get_stream_feature_view if view.endswith("_today") else self._store.get_feature_view
            online_store = get_online_store_from_config(self._config.online_store)
            found = online_store.online_read(self._config, lookup(view), keys, None)
            return [_wall_clock(stamp) if stamp is not None else None for stamp, _ in found]
        version = self._config.entity_key_serialization_version
        encoded = [serialize_entity_key(key, entity_key_serialization_version=version) for key in keys]
        unique = list(dict.fromkeys(encoded))
        # Feast's SQLite layout stores one row per (key, feature), each with the row's event_ts (Unix seconds).
        query = (
            f'SELECT entity_key, MAX(event_ts) FROM "{self._config.project}_{view}" '
            f"WHERE entity_key IN ({','.join('?' * len(unique))}) GROUP BY entity_key"
        )
        try:
            found_at = dict(self._connection().execute(query, unique).fetchall())
        except sqlite3.OperationalError:
            return [None] * len(rows)
        return [_wall_clock(found_at.get(key)) for key in encoded]

    def _connection(self) -> sqlite3.Connection:
        if self._sqlite is None:
            path = Path(self._config.online_store.path)
            self._sqlite = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        return self._sqlite


def _wall_clock(stamp: Any) -> datetime | None:
    """A stored stamp as the naive New York wall clock the features use (Feast labels that clock UTC)."""
    if stamp is None:
        return None
    if isinstance(stamp, datetime):
        return stamp.astimezone(UTC).replace(tzinfo=None) if stamp.tzinfo else stamp
    if isinstance(stamp, int | float) or str(stamp).lstrip("-").isdigit():
        return datetime.fromtimestamp(int(stamp), tz=UTC).replace(tzinfo=None)
    parsed = datetime.fromisoformat(str(stamp))
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


@dataclass(frozen=True)
class Champion:
    model: LoadedModel
    threshold: float
    threshold_source: str
    loaded_at: float


def _read_report(client: MlflowClient, run_id: str, week: str | None) -> dict[str, Any] | None:
    from mlflow.exceptions import MlflowException

    if not week:
        return None
    with tempfile.TemporaryDirectory() as scratch:
        try:
            local = client.download_artifacts(run_id, report_artifact(week), scratch)
        except (MlflowException, OSError):
            return None
        return json.loads(Path(local).read_text())


class ServingRuntime:
    """Loads on :meth:`load` (BentoML calls it once per worker); :meth:`predict` is thread-safe."""

    def __init__(self, settings: Settings | None = None, alias: str = CHAMPION) -> None:
        self.settings = settings or load_settings()
        self.alias = alias
        self._champion: Champion | None = None
        self._features: OnlineFeatures | None = None
        self._reference: RouteReference | None = None
        self.load_error: str | None = None

    def client(self) -> MlflowClient:
        from mlflow.tracking import MlflowClient

        return MlflowClient(
            tracking_uri=self.settings.mlflow_tracking_uri, registry_uri=self.settings.mlflow_registry_uri
        )

    def load(self) -> None:
        """Load everything; a failure is kept (readiness reports it) rather than raised, so health stays up."""
        try:
            self._champion = self._load_champion()
            self._features = self._load_features()
            self._reference = RouteReference.from_lake(self.settings.lake_root)
            self.load_error = None
        except Exception as exc:  # readiness must report any load failure, whatever its type
            self.load_error = f"{type(exc).__name__}: {exc}"

    def _load_champion(self) -> Champion:
        client = self.client()
        name = self.settings.registered_model_name
        version = alias_version(client, name, self.alias)
        if version is None:
            raise NotReadyError(f"registered model {name!r} has no {self.alias!r} alias; promote a model first")
        model = load_version(client, version)
        threshold, source = report_threshold(_read_report(client, model.run_id, model.partition))
        return Champion(model, threshold, source, time.time())

    def _load_features(self) -> OnlineFeatures:
        from mlops_assets.defs.features.resources import FeatureStoreResource

        resource = FeatureStoreResource.from_settings(self.settings)
        return OnlineFeatures(resource.online_reader(), resource.get_store())

    @property
    def ready(self) -> bool:
        return self._champion is not None and self._features is not None and self._reference is not None

    def readiness(self) -> dict[str, Any]:
        champion = self._champion
        return {
            "ready": self.ready,
            "error": self.load_error,
            "model_name": self.settings.registered_model_name,
            "alias": self.alias,
            "model_version": champion.model.version if champion else None,
            "model_partition": champion.model.partition if champion else None,
            "threshold": champion.threshold if champion else None,
            "threshold_source": champion.threshold_source if champion else None,
            "known_routes": len(self._reference.distance) if self._reference else 0,
        }

    def predict(self, requests: Sequence[FlightRequest]) -> list[Prediction]:
        if not self.ready:
            raise NotReadyError(self.load_error or "the service has not loaded its model yet")
        assert self._champion is not None and self._features is not None and self._reference is not None
        champion = self._champion
        frame = request_frame(requests, self._reference, self.settings.prediction_lead_minutes)
        online = self._features.fetch(entity_rows(frame))
        inputs = build_inputs(frame, online, champion.model.vocabulary)
        probabilities = champion.model.predict(inputs.matrix)
        return assemble(
            frame,
            probabilities,
            inputs,
            champion.threshold,
            champion.threshold_source,
            champion.model.name,
            champion.model.version,
        )
