{{ trailing_delay_stats('carrier', var('carrier_history_days')) }}
