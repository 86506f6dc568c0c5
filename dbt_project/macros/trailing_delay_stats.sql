{#- Point-in-time delay statistics of one entity (route, carrier, origin), computed at the end of each day D of the
    partition window for the flights of D + 1: the flights of the `window_days` days up to and including D whose
    outcome was known before D + 1 began (`outcome_known_at`, see stg_flights). A flight of D that lands after
    midnight is not counted: its outcome is unknown at D + 1's early predictions. Because the statistics for D + 1
    exist once D is built, they can be served before D + 1's first prediction. -#}
{% macro trailing_delay_stats(entity_column, window_days) %}
select
    partition_days.partition_date,
    partition_days.partition_date + 1 as stats_date,
    '{{ entity_column }}' as entity_type,
    known.{{ entity_column }} as entity,
    {{ window_days }} as window_days,
    count(*)::integer as flights,
    avg(known.is_delayed) as delay_rate,
    avg(known.is_cancelled::int) as cancel_rate,
    avg(known.dep_delay) as mean_dep_delay
from (
    select distinct flight_date as partition_date
    from {{ ref('stg_flights') }}
    where {{ partition_window('flight_date') }}
) as partition_days
inner join (
    select {{ entity_column }}, flight_date, outcome_known_at, is_delayed, is_cancelled, dep_delay
    from {{ ref('stg_flights') }}
    where {{ partition_window('flight_date', window_days) }}
) as known
    on known.flight_date > partition_days.partition_date - {{ window_days }}
    and known.flight_date <= partition_days.partition_date
    and known.outcome_known_at < cast(partition_days.partition_date + 1 as timestamp)
group by all
{% endmacro %}
