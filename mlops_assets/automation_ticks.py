"""The code location's sensors and automation conditions, ticked in this process against a real instance.

What the daemon does, without its intervals: each tick evaluates the named sensors (``SensorDefinition.evaluate_tick``
with a real ``build_sensor_context``, their cursors kept from tick to tick) and then the automation conditions
(``evaluate_automation_conditions``, as ``automation_sensor`` does, its cursor kept too), and executes every run they
request in this process (``execute_in_process``) before the next tick. Runs carry the tags the daemon gives them
(``dagster/sensor_name``, ``dagster/run_key``) plus ``mlops/driver=in-process``, and a run key a sensor already
launched is skipped, as the daemon skips it, so the decisions are the sensors' and conditions' own.

The difference from the daemon is time, not logic: runs execute one at a time, in the order requested, each in one
process (no run queue, no pool to wait for), and the next tick comes as soon as the last run ends. ``mlops-assets
replay --driver in-process`` and ``benchmarks/day.py`` use it; ``test_daemon_e2e`` proves the same path under a real
``dagster dev``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import dagster as dg

SENSOR_NAME_TAG = "dagster/sensor_name"
RUN_KEY_TAG = "dagster/run_key"
DRIVER_TAG = "mlops/driver"
AUTOMATION_SENSOR = "automation_sensor"


@dataclass(frozen=True)
class Launched:
    """One run a tick requested and this driver executed."""

    run_id: str
    source: str
    """The sensor that requested it, or ``automation_sensor`` for the automation conditions."""
    success: bool


@dataclass
class InProcessAutomation:
    """Sensors and automation conditions of ``defs`` ticked against ``instance``; see the module docstring."""

    defs: dg.Definitions
    instance: dg.DagsterInstance
    sensor_names: Sequence[str]
    """Ticked in this order before the automation conditions (e.g. landing first, so raw lands before the chain)."""
    resources: Mapping[str, object]
    sensor_cursors: dict[str, str | None] = field(default_factory=dict)
    automation_cursor: object | None = None

    def __post_init__(self) -> None:
        self._sensors = {name: self.defs.resolve_sensor_def(name) for name in self.sensor_names}
        self._asset_job = self.defs.resolve_implicit_global_asset_job_def()
        self._graph = self.defs.resolve_asset_graph()

    def _already_launched(self, sensor: str, run_key: str) -> bool:
        filters = dg.RunsFilter(tags={SENSOR_NAME_TAG: sensor, RUN_KEY_TAG: run_key})
        return bool(self.instance.get_run_ids(filters=filters, limit=1))

    def _execute_request(self, sensor: dg.SensorDefinition, request: dg.RunRequest) -> Launched | None:
        if request.run_key and self._already_launched(sensor.name, request.run_key):
            return None
        tags = {**request.tags, SENSOR_NAME_TAG: sensor.name, DRIVER_TAG: "in-process"}
        if request.run_key:
            tags[RUN_KEY_TAG] = request.run_key
        if request.asset_selection:
            job, selection = self._asset_job, list(request.asset_selection)
        else:
            job = self.defs.resolve_job_def(request.job_name or sensor.job_name)
            selection = None
        result = job.execute_in_process(
            instance=self.instance,
            run_config=request.run_config or None,
            tags=tags,
            partition_key=request.partition_key,
            asset_selection=selection,
            raise_on_error=False,
        )
        return Launched(result.run_id, sensor.name, result.success)

    def _tick_sensor(self, name: str) -> list[Launched]:
        sensor = self._sensors[name]
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.sensor_cursors.get(name),
            resources=self.resources,
            definitions=self.defs,
            sensor_name=name,
        )
        data = sensor.evaluate_tick(context)
        self.sensor_cursors[name] = data.cursor
        return [launched for r in data.run_requests or [] if (launched := self._execute_request(sensor, r))]

    def _tick_automation(self) -> list[Launched]:
        result = dg.evaluate_automation_conditions(
            defs=self.defs,
            instance=self.instance,
            cursor=self.automation_cursor,  # type: ignore[arg-type]
        )
        self.automation_cursor = result.cursor
        by_partition: dict[str | None, list[dg.AssetKey]] = {}
        for key in self._graph.get_all_asset_keys():
            for partition in result.get_requested_partitions(key):
                by_partition.setdefault(partition, []).append(key)
        launched = []
        tags = {SENSOR_NAME_TAG: AUTOMATION_SENSOR, DRIVER_TAG: "in-process"}
        for partition, keys in by_partition.items():
            run = self._asset_job.execute_in_process(
                instance=self.instance, asset_selection=keys, partition_key=partition, tags=tags, raise_on_error=False
            )
            launched.append(Launched(run.run_id, AUTOMATION_SENSOR, run.success))
        return launched

    def tick(self) -> list[Launched]:
        """One round: every sensor, then the automation conditions; every request executed before the next."""
        launched: list[Launched] = []
        for name in self.sensor_names:
            launched.extend(self._tick_sensor(name))
        launched.extend(self._tick_automation())
        return launched

    def settle(self, max_ticks: int = 25, progress: Callable[[int, list[Launched]], None] | None = None) -> Settled:
        """Tick until a whole round requests nothing (settled) or ``max_ticks`` rounds have run."""
        launched: list[Launched] = []
        for ticks in range(1, max_ticks + 1):
            new = self.tick()
            launched.extend(new)
            if progress is not None:
                progress(ticks, launched)
            if not new:
                return Settled(True, ticks, launched)
        return Settled(False, max_ticks, launched)


@dataclass(frozen=True)
class Settled:
    settled: bool
    """False when ``max_ticks`` rounds still requested runs."""
    ticks: int
    launched: list[Launched]
