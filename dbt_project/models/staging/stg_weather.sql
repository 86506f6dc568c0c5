-- Hourly weather records stamped with their New York local hour, the clock the flight schedule uses. A record of
-- hour H summarises observations made during that hour (EWR's are the HH:51 reports), so it is usable only from the
-- end of its hour: `available_at` is the earliest moment a prediction may see it.
select
    origin,
    make_timestamp(year, month, day, hour, 0, 0) as hour_start,
    make_timestamp(year, month, day, hour, 0, 0) + to_minutes({{ var('weather_record_minutes') }}) as available_at,
    temp,
    dewp,
    humid,
    wind_dir,
    wind_speed,
    wind_gust,
    precip,
    pressure,
    visib
from {{ source('raw', 'weather') }}
-- The source repeats a few origin-hours (daylight-saving change): keep one record per origin and hour.
qualify row_number() over (partition by origin, hour_start order by time_hour desc) = 1
