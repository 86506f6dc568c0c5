"""MLflow tracking and registry as a small ConfigurableResource, with no global MLflow state.

Why not dagster-mlflow: it is a legacy ``@resource`` that opens one MLflow run per Dagster run, and its end-of-run
hook leaves MLflow runs RUNNING when another asset runs after the hooked one in the same run (NOTES.md). Here each
materialisation opens its own parent run, and the context manager always closes it (FAILED on an exception), so no
run leaks whatever else the Dagster run does.

Everything goes through an ``MlflowClient`` bound to this resource's URIs: MLflow's fluent API keeps the tracking
URI and the active run in process-wide state, which would leak from one test, asset or code location into the next.
The model is saved with the flavour's ``save_model``, uploaded as the run's ``model`` artefacts and registered from
there, so registry steps (version, tags, alias) live here rather than in the asset.
"""

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from mlops_assets.lib.model_registry import PARTITION_TAG, alias_version, is_newest_partition
from mlops_assets.settings import Settings

if TYPE_CHECKING:
    import lightgbm as lgb
    import pandas as pd
    from mlflow.tracking import MlflowClient

# MLflow rejects a batch with more than 1000 metrics; a trial reports one point per ``report_every`` rounds.
_METRICS_PER_BATCH = 1000


@dataclass(frozen=True)
class TrackedRun:
    run_id: str
    experiment_id: str


class MlflowTracking(dg.ConfigurableResource):
    tracking_uri: str
    registry_uri: str
    artifact_root: str
    experiment_name: str = "flight_delay"
    registered_model_name: str = "flight_delay"

    @classmethod
    def from_settings(cls, settings: Settings) -> "MlflowTracking":
        return cls(
            tracking_uri=settings.mlflow_tracking_uri,
            registry_uri=settings.mlflow_registry_uri,
            artifact_root=settings.mlflow_artifact_root,
            registered_model_name=settings.registered_model_name,
        )

    def client(self) -> "MlflowClient":
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)

    def _experiment_id(self, client: "MlflowClient") -> str:
        experiment = client.get_experiment_by_name(self.experiment_name)
        if experiment is not None:
            return experiment.experiment_id
        # A tracking server chooses (or proxies) the artefact location itself; a local store needs one.
        remote = self.tracking_uri.startswith(("http://", "https://"))
        location = None if remote else f"{self.artifact_root.rstrip('/')}/{self.experiment_name}"
        return client.create_experiment(self.experiment_name, artifact_location=location)

    @contextmanager
    def parent_run(self, run_name: str, tags: Mapping[str, str]) -> Iterator[TrackedRun]:
        """One MLflow run for one materialisation; ended FINISHED, or FAILED if the body raises."""
        client = self.client()
        run = client.create_run(self._experiment_id(client), run_name=run_name, tags=dict(tags))
        tracked = TrackedRun(run_id=run.info.run_id, experiment_id=run.info.experiment_id)
        try:
            yield tracked
        except BaseException:
            client.set_terminated(tracked.run_id, status="FAILED")
            raise
        client.set_terminated(tracked.run_id, status="FINISHED")

    def log_params(self, run: TrackedRun, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(key, str(value)) for key, value in params.items()]
        for start in range(0, len(items), 100):  # MLflow caps a batch at 100 params
            self.client().log_batch(run.run_id, params=items[start : start + 100])

    def log_metrics(self, run: TrackedRun, metrics: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        self.client().log_batch(
            run.run_id, metrics=[Metric(key, float(value), timestamp=0, step=0) for key, value in metrics.items()]
        )

    def log_text(self, run: TrackedRun, text: str, artifact_file: str) -> None:
        self.client().log_text(run.run_id, text, artifact_file)

    def log_child_run(
        self,
        parent: TrackedRun,
        run_name: str,
        params: Mapping[str, Any],
        metric_history: Mapping[str, list[tuple[int, float]]],
        tags: Mapping[str, str],
        failed: bool,
    ) -> str:
        """A finished nested run (params, per-step metrics) under ``parent``, written from this process."""
        from mlflow.entities import Metric, Param, RunTag

        client = self.client()
        run = client.create_run(
            parent.experiment_id,
            run_name=run_name,
            tags={"mlflow.parentRunId": parent.run_id, **tags},
        )
        metrics = [
            Metric(key=key, value=value, timestamp=0, step=step)
            for key, points in metric_history.items()
            for step, value in points
        ]
        client.log_batch(
            run.info.run_id,
            params=[Param(key, str(value)) for key, value in params.items()],
            tags=[RunTag("trial_status", "FAILED" if failed else "FINISHED")],
        )
        for start in range(0, len(metrics), _METRICS_PER_BATCH):
            client.log_batch(run.info.run_id, metrics=metrics[start : start + _METRICS_PER_BATCH])
        client.set_terminated(run.info.run_id, status="FAILED" if failed else "FINISHED")
        return run.info.run_id

    def register_lightgbm(
        self,
        run: TrackedRun,
        booster: "lgb.Booster",
        input_example: "pd.DataFrame",
        tags: Mapping[str, str],
        alias: str,
    ) -> str:
        """Save the booster (signature from ``input_example``) under the run's ``model`` artefacts, register it as a
        new version of the registered model with ``tags``, point ``alias`` at it, and return the version.

        When ``tags`` carry a ``dagster.partition``, ``alias`` moves only if it does not already point at a version of
        a later partition: a backfill of an old week registers its version but leaves ``challenger`` on the newest
        week's candidate (see :meth:`alias_version` to tell which happened)."""
        import mlflow.lightgbm
        from mlflow.exceptions import MlflowException
        from mlflow.models import infer_signature

        client = self.client()
        signature = infer_signature(input_example, booster.predict(input_example.to_numpy()))
        with tempfile.TemporaryDirectory() as scratch:
            local = Path(scratch) / "model"
            mlflow.lightgbm.save_model(booster, str(local), signature=signature, input_example=input_example)
            client.log_artifacts(run.run_id, str(local), "model")
        try:
            client.create_registered_model(self.registered_model_name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        source = f"{client.get_run(run.run_id).info.artifact_uri.rstrip('/')}/model"
        version = client.create_model_version(self.registered_model_name, source, run_id=run.run_id, tags=dict(tags))
        partition = tags.get(PARTITION_TAG)
        if partition is None or is_newest_partition(client, self.registered_model_name, alias, partition):
            client.set_registered_model_alias(self.registered_model_name, alias, version.version)
        return str(version.version)

    def alias_version(self, alias: str) -> str | None:
        """The version ``alias`` points at, or None."""
        found = alias_version(self.client(), self.registered_model_name, alias)
        return str(found.version) if found is not None else None

    def run_link(self, run: TrackedRun) -> str:
        """A browser link for a tracking server, else the run's location in the local store."""
        base = self.tracking_uri.rstrip("/")
        if base.startswith(("http://", "https://")):
            return f"{base}/#/experiments/{run.experiment_id}/runs/{run.run_id}"
        return f"{base} experiment {run.experiment_id} run {run.run_id}"
