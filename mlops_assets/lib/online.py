"""Online feature lookup for serving: the Feast online store read directly, one read per feature view.

``FeatureStore.get_online_features`` is general (on-demand views, feature services, entity-name mapping,
status flags) and builds a protobuf response that it then converts column by column; on 2 cores that costs ~0.15 ms
per entity and view, so 100 entities took 15-25 ms against a 10 ms target. ``OnlineFeatureReader`` answers the same
request with the online store's own ``online_read`` (SQLite: one ``SELECT ... IN``; Redis: one pipelined ``HMGET``)
and converts the stored values directly. It returns what ``get_online_features(...).to_dict()`` returns: one list
per join key and per feature, ``None`` where the store has no value for a key.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from feast import FeatureStore, FeatureView
    from feast.protos.feast.types.Value_pb2 import Value as ValueProto


class OnlineLookupError(ValueError):
    """A lookup request that cannot be answered; the message names the view, the key and the fix."""


def python_value(value: "ValueProto | None") -> Any:
    """The Python value of a stored Feast ``Value`` (``None`` when unset or null)."""
    if value is None:
        return None
    kind = value.WhichOneof("val")
    if kind is None or kind == "null_val":
        return None
    raw = getattr(value, kind)
    if kind == "unix_timestamp_val":
        return datetime.fromtimestamp(raw, tz=UTC)
    if kind.endswith("_list_val"):
        return list(raw.val)
    return raw


def parse_feature_refs(features: Sequence[str]) -> dict[str, list[str]]:
    """``["view:feature", ...]`` grouped by view, in request order."""
    by_view: dict[str, list[str]] = defaultdict(list)
    for ref in features:
        view, _, feature = ref.partition(":")
        if not view or not feature:
            raise OnlineLookupError(f"feature reference {ref!r} must be 'view:feature', e.g. 'route_delay_stats:...'")
        by_view[view].append(feature)
    return dict(by_view)


class OnlineFeatureReader:
    """Latest feature values per entity key from a Feast store's online store (SQLite or Redis)."""

    def __init__(self, store: "FeatureStore") -> None:
        from feast.infra.online_stores.helpers import get_online_store_from_config

        self._config = store.config
        self._store = store
        self._online_store = get_online_store_from_config(store.config.online_store)
        self._views: dict[str, FeatureView] = {}

    def _view(self, name: str) -> "FeatureView":
        # The registry is read once per view and process: serving must not pay a registry lookup per request.
        if name not in self._views:
            try:
                self._views[name] = self._store.get_feature_view(name)
            except Exception as exc:  # Feast raises its own not-found types per registry backend
                raise OnlineLookupError(f"unknown feature view {name!r}: apply the feature repo first") from exc
        return self._views[name]

    def read(self, features: Sequence[str], entity_rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
        """Values of ``features`` (``"view:feature"``) for each entity row, like ``get_online_features().to_dict()``."""
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto

        result: dict[str, list[Any]] = {}
        for view_name, names in parse_feature_refs(features).items():
            view = self._view(view_name)
            join_keys = [column.name for column in view.entity_columns]
            entity_keys = []
            for index, row in enumerate(entity_rows):
                missing = [key for key in join_keys if row.get(key) is None]
                if missing:
                    raise OnlineLookupError(
                        f"entity row {index} has no {', '.join(missing)} for feature view {view_name!r}; "
                        f"pass {', '.join(join_keys)} in every row"
                    )
                entity_keys.append(
                    EntityKeyProto(join_keys=join_keys, entity_values=[_entity_value(row[key]) for key in join_keys])
                )
            # A copy: the Redis store appends its timestamp field to the list it is given.
            stored = self._online_store.online_read(self._config, view, entity_keys, list(names))
            for key in join_keys:
                result.setdefault(key, [row[key] for row in entity_rows])
            for name in names:
                result[name] = [python_value(values.get(name)) if values else None for _, values in stored]
        return result


def _entity_value(key: Any) -> "ValueProto":
    from feast.protos.feast.types.Value_pb2 import Value as ValueProto

    if isinstance(key, str):
        return ValueProto(string_val=key)
    if isinstance(key, int) and not isinstance(key, bool):
        return ValueProto(int64_val=key)
    raise OnlineLookupError(f"entity key {key!r} must be a string or an integer")
