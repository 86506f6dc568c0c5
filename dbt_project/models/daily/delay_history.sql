-- Point-in-time delay statistics per entity and flight day, one row per (flight_date, entity_type, entity):
-- each row summarises only days strictly before flight_date (see the trailing_delay_stats macro).
{{ trailing_delay_stats('route', var('route_history_days')) }}
union all
{{ trailing_delay_stats('carrier', var('carrier_history_days')) }}
union all
{{ trailing_delay_stats('origin', var('origin_history_days')) }}
