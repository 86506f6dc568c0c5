-- Point-in-time delay statistics per entity, one row per (partition_date, entity_type, entity): built at the end of
-- partition_date from outcomes known by then, valid for the flights of stats_date = partition_date + 1 (see the
-- trailing_delay_stats macro). Entities with no known outcome in the window have no row.
{{ config(unique_key='partition_date') }}
{{ trailing_delay_stats('route', var('route_history_days')) }}
union all
{{ trailing_delay_stats('carrier', var('carrier_history_days')) }}
union all
{{ trailing_delay_stats('origin', var('origin_history_days')) }}
