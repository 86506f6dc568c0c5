"""The serving runtime: the champion model, the online features and the route reference, loaded once per process.

Plain Python (no BentoML) so tests and benchmarks can drive it directly; :mod:`mlops_assets.service.service` wraps it.
Everything it reads is located by :mod:`mlops_assets.settings`. MLflow is reached through an ``MlflowClient`` bound
to the settings' URIs, never through MLflow's process-wide tracking URI.

Hot swap: :meth:`ServingRuntime.start_watching` starts a daemon thread that re-reads the alias every
``MLOPS_SERVING_POLL_SECONDS``. When it points at another version, that version (booster, vocabulary, calibrator and
threshold) is loaded completely and only then published by one reference assignment; a failed load keeps the current
champion and is reported by :meth:`ServingRuntime.readiness`. A promotion or a rollback thus reaches serving without a
restart and without a failed request.

Shadow and prediction log: the same poll follows alias ``challenger`` and publishes it with the champion; each request
scores it on the same joined rows for the log only (``MLOPS_SERVING_SHADOW`` turns it off). Every answered row is
queued for the prediction log (:mod:`mlops_assets.lib.prediction_log`), whose thread writes it to the lake in batches;
:meth:`ServingRuntime.close` writes the remainder. Counts go to an optional :class:`ServingObserver` (the service's
Prometheus series) and to :meth:`ServingRuntime.readiness`.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mlops_assets.lib.evaluation_report import report_artifact
from mlops_assets.lib.model_artifacts import LoadedModel, load_version
from mlops_assets.lib.model_registry import CHALLENGER, CHAMPION, alias_version
from mlops_assets.lib.prediction_log import PredictionLogWriter, log_root
from mlops_assets.service.scoring import (
    SERVING_VIEWS,
    FlightRequest,
    ModelInputs,
    OnlineValues,
    Prediction,
    RouteReference,
    assemble,
    build_inputs,
    entity_rows,
    log_records,
    model_matrix,
    report_threshold,
    request_frame,
)
from mlops_assets.settings import Settings, load_settings

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
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

            # Redis (production): the store's own read returns each row's stamp next to its values. A key it has never
            # stored comes back with empty values stamped at the Unix epoch (it has no `_ts:<view>` field;
            # test_feast_redis): that is no row, or an unknown tail would read as a stale one and not be flagged.
            lookup = self._store.get_stream_feature_view if view.endswith("_today") else self._store.get_feature_view
            online_store = get_online_store_from_config(self._config.online_store)
            found = online_store.online_read(self._config, lookup(view), keys, None)
            return [_wall_clock(stamp) if stamp is not None and stamp.timestamp() > 0 else None for stamp, _ in found]
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


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _iso(stamp: float | None) -> str | None:
    return datetime.fromtimestamp(stamp, tz=UTC).isoformat(timespec="seconds") if stamp is not None else None


@dataclass(frozen=True)
class Champion:
    """Everything one answer needs from the model side, published as a unit: the threshold swaps with its model."""

    model: LoadedModel
    threshold: float
    threshold_source: str
    loaded_at: float


@dataclass(frozen=True)
class ServedModels:
    """What one request scores with, published by one reference assignment: the champion (the answer) and the
    shadow challenger (the log only), so a request never pairs a new champion with a shadow of the old one."""

    champion: Champion
    shadow: LoadedModel | None = None
    # Decided at publication, not per request: with the champion's vocabulary the shadow scores the champion's
    # matrix as it is; otherwise the same joined rows are encoded again with the shadow's own vocabulary.
    shadow_shares_encoding: bool = False

    @classmethod
    def of(cls, champion: Champion, shadow: LoadedModel | None) -> ServedModels:
        shares = shadow is not None and shadow.vocabulary == champion.model.vocabulary
        return cls(champion, shadow, shares)


class ServingObserver(Protocol):
    """Where the runtime reports what it served (the service's Prometheus series). Called on the request path: an
    implementation must be cheap and must not raise."""

    def answered(self, answers: Sequence[Prediction]) -> None: ...

    def shadow_scored(self, version: str, rows: int, seconds: float, failed: bool) -> None: ...

    def log_dropped(self, rows: int) -> None: ...


class _Unobserved:
    """The observer of a runtime without metrics (tests, benchmarks, replays)."""

    def answered(self, answers: Sequence[Prediction]) -> None:
        pass

    def shadow_scored(self, version: str, rows: int, seconds: float, failed: bool) -> None:
        pass

    def log_dropped(self, rows: int) -> None:
        pass


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


# What MLflow answers for an alias (or a registered model) that does not exist, as opposed to a failed look-up.
_ABSENT = frozenset({"INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"})


def _request_ids(rows: int) -> list[str]:
    # One uuid per call (uuid4 per row would cost a batch of 1,000 about 2 ms); the row's index makes it unique.
    call = uuid.uuid4().hex
    return [f"{call}-{index}" for index in range(rows)]


class ServingRuntime:
    """Loads on :meth:`load` (BentoML calls it once per worker) and, after :meth:`start` (or
    :meth:`start_watching`), follows its alias until :meth:`stop`; :meth:`close` also writes what the prediction log
    still holds. :meth:`predict` is thread-safe and scores each call with one champion (and one shadow) throughout.

    Shadow: when ``MLOPS_SERVING_SHADOW`` is on and alias ``challenger`` names another version than the champion,
    the same poll loads that version and publishes it with the champion; every request also scores it on the same
    joined rows, and its score goes to the prediction log only. A failed shadow load or score is counted and
    reported, never raised: the champion's answer does not depend on it.

    Every answered row is queued for the prediction log (:class:`~mlops_assets.lib.prediction_log.PredictionLogWriter`,
    written in batches by its thread); a full queue drops and counts rows rather than slowing the request."""

    def __init__(
        self, settings: Settings | None = None, alias: str = CHAMPION, observer: ServingObserver | None = None
    ) -> None:
        self.settings = settings or load_settings()
        self.alias = alias
        self.observer: ServingObserver = observer or _Unobserved()
        self._models: ServedModels | None = None
        self._features: OnlineFeatures | None = None
        self._reference: RouteReference | None = None
        self.load_error: str | None = None
        # The watcher's record, reported by readiness(): when it last looked, what went wrong then, how many swaps.
        self.last_poll_at: float | None = None
        self.last_poll_error: str | None = None
        self.swaps = 0
        # The shadow's record: why the poll could not load it, why its last score failed, and the row counts.
        self.shadow_load_error: str | None = None
        self.shadow_score_error: str | None = None
        self.shadow_rows = 0
        self.shadow_failed_rows = 0
        self._dropped_reported = 0
        self._counts_lock = threading.Lock()
        # Constructed here, started by start(): no thread before the server has forked its workers.
        self.prediction_log = PredictionLogWriter(
            self.settings.prediction_log_root,
            batch_rows=self.settings.prediction_log_batch_rows,
            flush_seconds=self.settings.prediction_log_flush_seconds,
            max_queue_rows=self.settings.prediction_log_max_queue_rows,
        )
        # load() and poll() may run on different threads; serialised, a slow load can never publish an older version
        # after a newer one.
        self._load_lock = threading.Lock()
        self._stop_event = threading.Event()
        self._watcher: threading.Thread | None = None
        self._poll_client: MlflowClient | None = None

    def client(self) -> MlflowClient:
        from mlflow.tracking import MlflowClient

        return MlflowClient(
            tracking_uri=self.settings.mlflow_tracking_uri, registry_uri=self.settings.mlflow_registry_uri
        )

    def load(self) -> None:
        """Load everything; a failure is kept (readiness reports it) rather than raised, so health stays up."""
        with self._load_lock:
            try:
                client = self.client()
                champion = self._load_champion(client)
                self._models = ServedModels.of(champion, self._follow_shadow(client, champion, None))
                self._features = self._load_features()
                self._reference = RouteReference.from_lake(self.settings.lake_root)
                self.load_error = None
            except Exception as exc:  # readiness must report any load failure, whatever its type
                self.load_error = _describe(exc)

    def _alias_target(self, client: MlflowClient) -> ModelVersion:
        name = self.settings.registered_model_name
        version = alias_version(client, name, self.alias)
        if version is None:
            raise NotReadyError(f"registered model {name!r} has no {self.alias!r} alias; promote a model first")
        return version

    def _load_champion(self, client: MlflowClient | None = None, version: ModelVersion | None = None) -> Champion:
        client = client or self.client()
        version = version or self._alias_target(client)
        model = load_version(client, version)
        threshold, source = report_threshold(_read_report(client, model.run_id, model.partition))
        return Champion(model, threshold, source, time.time())

    @property
    def shadow_enabled(self) -> bool:
        return self.settings.serving_shadow and self.alias != CHALLENGER

    def _follow_shadow(
        self, client: MlflowClient, champion: Champion, current: LoadedModel | None
    ) -> LoadedModel | None:
        """The model to shadow ``champion`` with: the ``challenger`` alias's version when it is another one, reused
        when already loaded. Never raises: a failed load means no shadow until a later poll loads it."""
        if not self.shadow_enabled:
            return None
        from mlflow.exceptions import MlflowException

        target: str | None = None
        try:
            try:
                version = client.get_model_version_by_alias(self.settings.registered_model_name, CHALLENGER)
            except MlflowException as exc:
                if exc.error_code not in _ABSENT:
                    raise  # the registry failed to answer: not the same as no challenger
                version = None
            target = str(version.version) if version is not None else None
            if version is None or target == champion.model.version:
                shadow = None  # no candidate, or it was promoted: nothing to compare the champion with
            elif current is not None and current.version == target:
                shadow = current
            else:
                shadow = load_version(client, version)
            self.shadow_load_error = None
            return shadow
        except Exception as exc:  # the shadow feeds the log only: no failure of its load may reach serving
            self.shadow_load_error = f"{CHALLENGER} -> version {target}: {_describe(exc)}"
            # A failed look-up keeps the loaded shadow (a registry hiccup must not gap the log's shadow scores); a
            # failed load of another version leaves none, since the loaded one is no longer the challenger.
            return current if target is None else None

    def poll(self) -> bool:
        """Check the aliases once and swap in their versions if they moved; True when the champion changed. Never
        raises: a failure keeps whatever is loaded and is recorded for readiness (the next poll retries)."""
        with self._load_lock:
            target: str | None = None
            try:
                # One client for every poll: building one per poll would open the registry store each time.
                client = self._poll_client = self._poll_client or self.client()
                version = self._alias_target(client)
                target = str(version.version)
                current = self._models
                if current is not None and current.champion.model.version == target:
                    champion = current.champion
                else:
                    # Fully loaded (booster, vocabulary, calibrator, threshold) before anything is published: requests
                    # keep scoring with the current champion meanwhile, and a failure here leaves it in place.
                    champion = self._load_champion(client, version)
                swapped = current is None or champion is not current.champion
                shadow = self._follow_shadow(client, champion, current.shadow if current else None)
                if current is None or champion is not current.champion or shadow is not current.shadow:
                    # One reference assignment (atomic under the GIL): predict reads self._models once per call,
                    # so a request sees the old pair or the new one, never a mix.
                    self._models = ServedModels.of(champion, shadow)
                if swapped and current is not None:
                    self.swaps += 1
                # A service started before any champion (or whose store failed) becomes ready by polling.
                if self._features is None:
                    self._features = self._load_features()
                if self._reference is None:
                    self._reference = RouteReference.from_lake(self.settings.lake_root)
                self.last_poll_error = None
                self.load_error = None
                return swapped
            except Exception as exc:  # any failure must keep the current champion and be reported, whatever its type
                # Name the version it tried: the alias may have moved again by the time someone reads /status.
                self.last_poll_error = (
                    f"{self.alias} -> version {target}: {_describe(exc)}" if target else _describe(exc)
                )
                if not self.ready:
                    # Keep the not-ready reason current: predict's 503 and readiness quote it.
                    self.load_error = self.last_poll_error
                return False
            finally:
                self.last_poll_at = time.time()

    def start(self) -> None:
        """Start the prediction log's writer and the alias watcher (BentoML's worker calls this once, after the
        fork); :meth:`close` ends both."""
        self.prediction_log.start()
        self.start_watching()

    def start_watching(self) -> None:
        """Start the daemon thread that calls :meth:`poll` every ``serving_poll_seconds`` (no-op if it runs)."""
        if self.watching:
            return
        # A fresh event per thread: a previous thread still finishing its last poll after stop() keeps its own, set.
        self._stop_event = threading.Event()
        self._watcher = threading.Thread(
            target=self._watch, args=(self._stop_event,), name=f"serving-watch-{self.alias}", daemon=True
        )
        self._watcher.start()

    def _watch(self, stop: threading.Event) -> None:
        while not stop.wait(self.settings.serving_poll_seconds):
            self.poll()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the watcher; waits for a poll in progress (a model load) up to ``timeout`` seconds."""
        self._stop_event.set()
        watcher, self._watcher = self._watcher, None
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Stop the watcher, then write what the prediction log still holds and stop its writer (a clean shutdown
        loses no logged row). Final: later answers are still given, but their rows are dropped and counted."""
        self.stop(timeout)
        self.prediction_log.close(timeout)
        self._report_dropped()

    @property
    def watching(self) -> bool:
        return self._watcher is not None and self._watcher.is_alive()

    def _load_features(self) -> OnlineFeatures:
        from mlops_assets.defs.features.resources import FeatureStoreResource

        resource = FeatureStoreResource.from_settings(self.settings)
        return OnlineFeatures(resource.online_reader(), resource.get_store())

    @property
    def ready(self) -> bool:
        return self._models is not None and self._features is not None and self._reference is not None

    def readiness(self) -> dict[str, Any]:
        models = self._models
        champion = models.champion if models else None
        shadow = models.shadow if models else None
        self._report_dropped()  # background write failures reach the metric here too, not only at the next request
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
            "loaded_at": _iso(champion.loaded_at) if champion else None,
            "watching": self.watching,
            "poll_seconds": self.settings.serving_poll_seconds,
            "last_poll_at": _iso(self.last_poll_at),
            "last_poll_error": self.last_poll_error,
            "swaps": self.swaps,
            "shadow": {
                "enabled": self.shadow_enabled,
                "alias": CHALLENGER,
                "version": shadow.version if shadow else None,
                "load_error": self.shadow_load_error,
                "last_score_error": self.shadow_score_error,
                "scored_rows": self.shadow_rows,
                "failed_rows": self.shadow_failed_rows,
            },
            "prediction_log": {"root": log_root(self.settings.prediction_log_root), **self.prediction_log.stats()},
        }

    def predict(self, requests: Sequence[FlightRequest]) -> list[Prediction]:
        # Read once: a swap during this call changes neither the models, the threshold nor the versions it reports.
        models = self._models
        if not self.ready or models is None:
            raise NotReadyError(self.load_error or "the service has not loaded its model yet")
        assert self._features is not None and self._reference is not None
        champion = models.champion
        frame = request_frame(requests, self._reference, self.settings.prediction_lead_minutes)
        online = self._features.fetch(entity_rows(frame))
        inputs = build_inputs(frame, online, champion.model.vocabulary)
        probabilities = champion.model.predict(inputs.matrix)
        answers = assemble(
            frame,
            probabilities,
            inputs,
            champion.threshold,
            champion.threshold_source,
            champion.model.name,
            champion.model.version,
            _request_ids(len(requests)),
        )
        shadow_scores = self._score_shadow(models, inputs)
        shadow_version = models.shadow.version if models.shadow is not None else None
        self.prediction_log.append(log_records(requests, inputs, answers, shadow_version, shadow_scores))
        self._report_dropped()
        self.observer.answered(answers)
        return answers

    def _score_shadow(self, models: ServedModels, inputs: ModelInputs) -> list[float] | None:
        """The shadow's probabilities on the champion's joined rows, or None (no shadow, or it failed: counted)."""
        shadow = models.shadow
        if shadow is None:
            return None
        rows = inputs.frame.height
        began = time.perf_counter()
        try:
            matrix = inputs.matrix if models.shadow_shares_encoding else model_matrix(inputs.frame, shadow.vocabulary)
            scores = shadow.predict(matrix).tolist()
        except Exception as exc:  # a shadow's failure must never fail the champion's answer, whatever its type
            with self._counts_lock:
                self.shadow_failed_rows += rows
                self.shadow_score_error = f"scoring {CHALLENGER} v{shadow.version}: {_describe(exc)}"
            self.observer.shadow_scored(shadow.version, rows, time.perf_counter() - began, failed=True)
            return None
        # What the shadow adds to the request: its encoding (when not shared) and its scoring.
        seconds = time.perf_counter() - began
        with self._counts_lock:
            self.shadow_rows += rows
        self.observer.shadow_scored(shadow.version, rows, seconds, failed=False)
        return scores

    def _report_dropped(self) -> None:
        """Pass rows the log dropped since the last report (a full queue here, a failed write in its thread) on to
        the observer, each row once."""
        if self.prediction_log.dropped_rows == self._dropped_reported:
            return  # the request path's usual case: one comparison, no lock
        with self._counts_lock:
            dropped = self.prediction_log.dropped_rows
            new, self._dropped_reported = dropped - self._dropped_reported, dropped
        if new > 0:
            self.observer.log_dropped(new)
