{#- Point-in-time delay statistics of one entity (route, carrier, origin): for every flight day in the partition
    window, the flights of the `window_days` days strictly before it. The day itself is never included, so a
    feature can only see outcomes that were known before the flight's day began. -#}
{% macro trailing_delay_stats(entity_column, window_days) %}
select
    target_days.flight_date,
    '{{ entity_column }}' as entity_type,
    target_days.{{ entity_column }} as entity,
    {{ window_days }} as window_days,
    coalesce(sum(daily.flights), 0)::integer as flights,
    sum(daily.delayed) / nullif(sum(daily.flights), 0) as delay_rate,
    sum(daily.cancelled) / nullif(sum(daily.flights), 0) as cancel_rate,
    sum(daily.dep_delay_sum) / nullif(sum(daily.dep_delay_count), 0) as mean_dep_delay
from (
    select distinct flight_date, {{ entity_column }}
    from {{ ref('stg_flights') }}
    where {{ partition_window('flight_date') }}
) as target_days
left join (
    select
        {{ entity_column }},
        flight_date,
        count(*) as flights,
        sum(is_delayed) as delayed,
        sum(is_cancelled::int) as cancelled,
        sum(dep_delay) as dep_delay_sum,
        count(dep_delay) as dep_delay_count
    from {{ ref('stg_flights') }}
    where {{ partition_window('flight_date', window_days + 1) }}
    group by all
) as daily
    on daily.{{ entity_column }} = target_days.{{ entity_column }}
    and daily.flight_date >= target_days.flight_date - {{ window_days }}
    and daily.flight_date < target_days.flight_date
group by all
{% endmacro %}
