"""Feast entities. String join keys are declared with ``ValueType.STRING`` (polars writes Arrow ``large_string``,
which Feast otherwise misreads)."""

from feast import Entity, ValueType

route = Entity(name="route", join_keys=["route"], value_type=ValueType.STRING, description="origin-destination pair")
carrier = Entity(name="carrier", join_keys=["carrier"], value_type=ValueType.STRING, description="airline code")
origin = Entity(name="origin", join_keys=["origin"], value_type=ValueType.STRING, description="NYC origin airport")
plane = Entity(name="plane", join_keys=["tailnum"], value_type=ValueType.STRING, description="aircraft tail number")

ENTITIES = {entity.name: entity for entity in (route, carrier, origin, plane)}
