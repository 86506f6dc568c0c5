{{ trailing_delay_stats('route', var('route_history_days')) }}
