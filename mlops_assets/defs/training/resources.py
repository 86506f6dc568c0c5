"""MLflow tracking and registry as a small ConfigurableResource.

Why not dagster-mlflow: it is a legacy ``@resource`` that opens one MLflow run per Dagster run, and its end-of-run
hook leaves MLflow runs RUNNING when another asset runs after the hooked one in the same run (NOTES.md). Here each
materialisation opens its own parent run, and the context manager always closes it (FAILED on an exception), so no
run leaks whatever else the Dagster run does.
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import dagster as dg
import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from mlops_assets.settings import Settings

# MLflow rejects a batch with more than 1000 metrics; a trial reports one point per ``report_every`` rounds.
_METRICS_PER_BATCH = 1000


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

    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)

    def _configure(self) -> str:
        """Point the fluent API at this store and return the experiment id (created on first use)."""
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.registry_uri)
        experiment = mlflow.get_experiment_by_name(self.experiment_name)
        if experiment is not None:
            return experiment.experiment_id
        # A tracking server chooses (or proxies) the artefact location itself; a local store needs one.
        remote = self.tracking_uri.startswith(("http://", "https://"))
        location = None if remote else f"{self.artifact_root.rstrip('/')}/{self.experiment_name}"
        return mlflow.create_experiment(self.experiment_name, artifact_location=location)

    @contextmanager
    def parent_run(self, run_name: str, tags: Mapping[str, str]) -> Iterator[mlflow.ActiveRun]:
        """One MLflow run for one materialisation; ended FINISHED, or FAILED if the body raises."""
        experiment_id = self._configure()
        run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=dict(tags))
        try:
            yield run
        except BaseException:
            mlflow.end_run(status="FAILED")
            raise
        mlflow.end_run(status="FINISHED")

    def log_child_run(
        self,
        parent: mlflow.ActiveRun,
        run_name: str,
        params: Mapping[str, Any],
        metric_history: Mapping[str, list[tuple[int, float]]],
        tags: Mapping[str, str],
        failed: bool,
    ) -> str:
        """A finished nested run (params, per-step metrics) under ``parent``, written from this process."""
        client = self.client()
        run = client.create_run(
            parent.info.experiment_id,
            run_name=run_name,
            tags={"mlflow.parentRunId": parent.info.run_id, **tags},
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

    def run_link(self, run: mlflow.ActiveRun) -> str:
        """A browser link for a tracking server, else the run's location in the local store."""
        base = self.tracking_uri.rstrip("/")
        if base.startswith(("http://", "https://")):
            return f"{base}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
        return f"{base} experiment {run.info.experiment_id} run {run.info.run_id}"
