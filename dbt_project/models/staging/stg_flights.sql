-- One row per scheduled flight, New York local times. Cancelled or diverted flights have no arrival delay: they
-- count as delayed (label 1), because the passenger's outcome is at least as bad as a 15-minute delay.
select
    make_date(year, month, day) || '_' || carrier || flight::varchar || '_' || origin as flight_id,
    make_date(year, month, day) as flight_date,
    carrier,
    flight,
    tailnum,
    origin,
    dest,
    origin || '-' || dest as route,
    sched_dep_time,
    sched_arr_time,
    make_timestamp(year, month, day, sched_dep_time // 100, sched_dep_time % 100, 0) as sched_dep_ts,
    distance,
    dep_time,
    dep_delay,
    arr_time,
    arr_delay,
    air_time,
    arr_delay is null as is_cancelled,
    case when arr_delay is null or arr_delay >= 15 then 1 else 0 end as is_delayed
from {{ source('raw', 'flights') }}
