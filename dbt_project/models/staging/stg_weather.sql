-- Hourly observations stamped with their New York local hour, the clock the flight schedule uses.
select
    origin,
    make_timestamp(year, month, day, hour, 0, 0) as observed_at,
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
-- The source repeats a few origin-hours (daylight-saving change): keep one observation per origin and hour.
qualify row_number() over (partition by origin, observed_at order by time_hour desc) = 1
