-- One row per scheduled flight, New York local times. Cancelled or diverted flights have no arrival delay: they
-- count as delayed (label 1), because the passenger's outcome is at least as bad as a 15-minute delay.
--
-- What is known when, on the New York clock (the rules every point-in-time feature follows):
--   dep_ts            the actual departure, scheduled departure + dep_delay (null when the flight never left);
--   sched_arr_ts      the scheduled arrival: the destination's local HHMM converted from its time zone, the next
--                     day when that falls before the departure;
--   outcome_known_at  when the label became observable: the actual arrival; for a flight that never left, its
--                     scheduled departure; for one that left and never arrived (diverted), 15 minutes past its
--                     scheduled arrival, when "not arrived" already means "delayed".
-- A destination missing from the airports table (4 Caribbean airports, UTC-4 without daylight saving) is read on
-- the New York clock, which is the same or one hour later than the truth: late is safe, early would leak.
with flights as (
    select
        *,
        make_date(year, month, day) as flight_date,
        make_timestamp(year, month, day, sched_dep_time // 100, sched_dep_time % 100, 0) as sched_dep_ts,
        make_timestamp(year, month, day, sched_arr_time // 100, sched_arr_time % 100, 0) as sched_arr_local
    from {{ source('raw', 'flights') }}
),

timed as (
    select
        flights.*,
        case
            when dest_airport.tzone is null then sched_arr_local
            else timezone('America/New_York', timezone(dest_airport.tzone, sched_arr_local))
        end as sched_arr_same_day
    from flights
    left join {{ source('raw', 'airports') }} as dest_airport on flights.dest = dest_airport.faa
),

scheduled as (
    select
        *,
        case
            when sched_arr_same_day <= sched_dep_ts then sched_arr_same_day + interval 1 day
            else sched_arr_same_day
        end as sched_arr_ts
    from timed
)

select
    flight_date || '_' || carrier || flight::varchar || '_' || origin as flight_id,
    flight_date,
    carrier,
    flight,
    tailnum,
    origin,
    dest,
    origin || '-' || dest as route,
    sched_dep_time,
    sched_arr_time,
    sched_dep_ts,
    sched_arr_ts,
    distance,
    dep_time,
    dep_delay,
    sched_dep_ts + to_minutes(dep_delay::bigint) as dep_ts,
    arr_time,
    arr_delay,
    air_time,
    case
        when dep_delay is null then sched_dep_ts
        when arr_delay is null then sched_arr_ts + interval 15 minute
        else sched_arr_ts + to_minutes(arr_delay::bigint)
    end as outcome_known_at,
    arr_delay is null as is_cancelled,
    case when arr_delay is null or arr_delay >= 15 then 1 else 0 end as is_delayed
from scheduled
