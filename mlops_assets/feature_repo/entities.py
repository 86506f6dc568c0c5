"""Feast entities. String join keys are declared with ``ValueType.STRING`` (polars writes Arrow ``large_string``,
which Feast otherwise misreads). The ``*_day`` entities key the intraday views by operating day
(``EWR|2013-03-01``, see :mod:`mlops_assets.lib.intraday`)."""

from feast import Entity, ValueType

route = Entity(name="route", join_keys=["route"], value_type=ValueType.STRING, description="origin-destination pair")
carrier = Entity(name="carrier", join_keys=["carrier"], value_type=ValueType.STRING, description="airline code")
origin = Entity(name="origin", join_keys=["origin"], value_type=ValueType.STRING, description="NYC origin airport")
plane = Entity(name="plane", join_keys=["tailnum"], value_type=ValueType.STRING, description="aircraft tail number")
origin_day = Entity(
    name="origin_day", join_keys=["origin_day"], value_type=ValueType.STRING, description="origin|operating day"
)
carrier_origin_day = Entity(
    name="carrier_origin_day",
    join_keys=["carrier_origin_day"],
    value_type=ValueType.STRING,
    description="carrier|origin|operating day",
)
carrier_day = Entity(
    name="carrier_day", join_keys=["carrier_day"], value_type=ValueType.STRING, description="carrier|operating day"
)
dest_day = Entity(
    name="dest_day", join_keys=["dest_day"], value_type=ValueType.STRING, description="destination|operating day"
)
tail_day = Entity(
    name="tail_day", join_keys=["tail_day"], value_type=ValueType.STRING, description="tail number|operating day"
)

ENTITIES = {
    entity.name: entity
    for entity in (route, carrier, origin, plane, origin_day, carrier_origin_day, carrier_day, dest_day, tail_day)
}
