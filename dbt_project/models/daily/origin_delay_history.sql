{{ trailing_delay_stats('origin', var('origin_history_days')) }}
