-- One row per flight of the partition window with everything known at prediction time (scheduled departure minus
-- the configured lead): the schedule, the plane, the destination, the last origin weather record complete by then
-- (usable from the end of its hour, see stg_weather), and the delay statistics built at the end of the day before
-- from outcomes known by then (delay_history). Outcome columns (dep_/arr_ times and delays, dep_ts,
-- outcome_known_at) are kept for labels, intraday departure events and monitoring only; the feature contract in
-- mlops_assets.lib excludes them. Flights without a tail number stay here (they are real, all cancelled); the
-- feature contract keeps them out of scope.
with flights as (
    select
        *,
        sched_dep_ts - to_minutes({{ var('prediction_lead_minutes') }}) as prediction_ts
    from {{ ref('stg_flights') }}
    where {{ partition_window('flight_date') }}
),

weather as (
    select *
    from {{ ref('stg_weather') }}
    where {{ partition_window('cast(available_at as date)', 1) }}
),

flights_with_weather as (
    select
        flights.*,
        weather.available_at as weather_available_at,
        weather.temp,
        weather.dewp,
        weather.humid,
        weather.wind_dir,
        weather.wind_speed,
        weather.wind_gust,
        weather.precip,
        weather.pressure,
        weather.visib
    from flights
    asof left join weather
        on flights.origin = weather.origin
        and flights.prediction_ts >= weather.available_at
)

select
    f.flight_id,
    f.flight_date,
    f.prediction_ts,
    f.sched_dep_ts,
    f.carrier,
    airlines.carrier_name,
    f.flight,
    f.tailnum,
    f.origin,
    f.dest,
    f.route,
    f.sched_dep_time,
    f.sched_arr_time,
    (f.sched_dep_time // 100)::integer as sched_dep_hour,
    month(f.flight_date)::integer as month,
    isodow(f.flight_date)::integer as day_of_week,
    f.distance,
    planes.plane_year,
    planes.plane_type,
    planes.plane_engines,
    planes.plane_seats,
    dest_airport.lat as dest_lat,
    dest_airport.lon as dest_lon,
    dest_airport.alt as dest_alt,
    case when weather_age.minutes <= {{ var('max_weather_age_minutes') }} then weather_age.minutes end
        as weather_age_minutes,
    {%- for column in ['temp', 'dewp', 'humid', 'wind_dir', 'wind_speed', 'wind_gust', 'precip', 'pressure', 'visib'] %}
    case when weather_age.minutes <= {{ var('max_weather_age_minutes') }} then f.{{ column }} end as weather_{{ column }},
    {%- endfor %}
    {%- for entity in ['route', 'carrier', 'origin'] %}
    {%- set days = var(entity ~ '_history_days') %}
    coalesce({{ entity }}_history.flights, 0) as {{ entity }}_flights_{{ days }}d,
    {{ entity }}_history.delay_rate as {{ entity }}_delay_rate_{{ days }}d,
    {{ entity }}_history.cancel_rate as {{ entity }}_cancel_rate_{{ days }}d,
    {{ entity }}_history.mean_dep_delay as {{ entity }}_mean_dep_delay_{{ days }}d,
    {%- endfor %}
    f.dep_time,
    f.dep_delay,
    f.dep_ts,
    f.outcome_known_at,
    f.arr_time,
    f.arr_delay,
    f.air_time,
    f.is_cancelled,
    f.is_delayed
from flights_with_weather as f
cross join lateral (
    select date_diff('minute', f.weather_available_at, f.prediction_ts) as minutes
) as weather_age
left join {{ ref('stg_planes') }} as planes on f.tailnum = planes.tailnum
left join {{ ref('stg_airports') }} as dest_airport on f.dest = dest_airport.faa
left join {{ ref('stg_airlines') }} as airlines on f.carrier = airlines.carrier
{%- for entity in ['route', 'carrier', 'origin'] %}
left join {{ ref('delay_history') }} as {{ entity }}_history
    on f.flight_date = {{ entity }}_history.stats_date
    and {{ entity }}_history.entity_type = '{{ entity }}'
    and f.{{ entity }} = {{ entity }}_history.entity
{%- endfor %}
