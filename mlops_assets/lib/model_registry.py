"""Registry aliases of the weekly model: which version is the week's candidate, and the champion's promotion and
rollback, each recorded as tags (who moved what, when, why). Works on an ``MlflowClient``; no Dagster, no global
MLflow state.

Aliases: ``challenger`` (the newest week's candidate), ``champion`` (what serving loads), ``previous_champion`` (the
champion before the last promotion, what a rollback restores).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

CHAMPION = "champion"
PREVIOUS_CHAMPION = "previous_champion"
CHALLENGER = "challenger"
REGISTRY_ALIASES = (CHAMPION, CHALLENGER, PREVIOUS_CHAMPION)
PARTITION_TAG = "dagster.partition"


class RegistryError(RuntimeError):
    """The registry is not in a state that allows the requested move."""


def alias_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def candidate_version(client: MlflowClient, name: str, partition: str) -> ModelVersion:
    """The newest version of ``name`` whose ``dagster.partition`` tag is ``partition``."""
    versions = client.search_model_versions(f"name = '{name}' and tags.`{PARTITION_TAG}` = '{partition}'")
    if not versions:
        raise RegistryError(
            f"no version of registered model {name!r} is tagged {PARTITION_TAG}={partition}; materialise "
            f"trained_model for {partition} first"
        )
    return max(versions, key=lambda v: int(v.version))


def is_newest_partition(client: MlflowClient, name: str, alias: str, partition: str) -> bool:
    """True unless ``alias`` points at a version of a later week than ``partition`` (a backfill of an old week)."""
    current = alias_version(client, name, alias)
    if current is None:
        return True
    held = (current.tags or {}).get(PARTITION_TAG)
    return held is None or partition >= held


def _now(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).isoformat(timespec="seconds")


@dataclass(frozen=True)
class AliasMove:
    action: str
    alias: str
    to_version: str
    from_version: str | None
    reason: str
    at: str

    def as_dict(self) -> dict[str, str | None]:
        return {
            "action": self.action,
            "alias": self.alias,
            "to_version": self.to_version,
            "from_version": self.from_version,
            "reason": self.reason,
            "at": self.at,
        }


def _record(client: MlflowClient, name: str, move: AliasMove) -> None:
    client.set_registered_model_tag(name, f"last_{move.action}", json.dumps(move.as_dict(), sort_keys=True))
    client.set_model_version_tag(name, move.to_version, f"{move.action}_at", move.at)
    client.set_model_version_tag(name, move.to_version, f"{move.action}_reason", move.reason)


def promote(client: MlflowClient, name: str, version: str, reason: str, now: datetime | None = None) -> AliasMove:
    """Point ``champion`` at ``version``; the old champion (if another version) becomes ``previous_champion``."""
    current = alias_version(client, name, CHAMPION)
    previous = str(current.version) if current is not None else None
    if previous is not None and previous != str(version):
        client.set_registered_model_alias(name, PREVIOUS_CHAMPION, previous)
    client.set_registered_model_alias(name, CHAMPION, str(version))
    move = AliasMove("promotion", CHAMPION, str(version), previous, reason, _now(now))
    _record(client, name, move)
    return move


def rollback(
    client: MlflowClient,
    name: str,
    reason: str,
    now: datetime | None = None,
    expected_champion: str | None = None,
) -> AliasMove:
    """Restore ``previous_champion`` as ``champion``. The demoted version is tagged ``rolled_back_*`` and
    ``previous_champion`` is removed, so a second rollback cannot flip back to the version just demoted.

    ``expected_champion`` guards a rollback decided earlier (the automated one is decided by a sensor and run later):
    if the champion has moved since, nothing changes and the error says so."""
    if not reason.strip():
        raise RegistryError("a rollback needs a reason (it is recorded on the registered model)")
    current = alias_version(client, name, CHAMPION)
    demoted = str(current.version) if current is not None else None
    if expected_champion is not None and demoted != expected_champion:
        raise RegistryError(
            f"registered model {name!r}: the rollback was decided for {CHAMPION!r} v{expected_champion}, but "
            f"{CHAMPION!r} is now {f'v{demoted}' if demoted else 'unset'}; nothing changed (decide again on the "
            "current champion)"
        )
    previous = alias_version(client, name, PREVIOUS_CHAMPION)
    if previous is None:
        raise RegistryError(f"registered model {name!r} has no {PREVIOUS_CHAMPION!r} alias: nothing to roll back to")
    client.set_registered_model_alias(name, CHAMPION, str(previous.version))
    client.delete_registered_model_alias(name, PREVIOUS_CHAMPION)
    move = AliasMove("rollback", CHAMPION, str(previous.version), demoted, reason, _now(now))
    _record(client, name, move)
    if demoted is not None:
        client.set_model_version_tag(name, demoted, "rolled_back_at", move.at)
        client.set_model_version_tag(name, demoted, "rolled_back_reason", reason)
    return move
