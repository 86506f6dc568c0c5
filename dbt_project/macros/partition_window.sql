{#- Rows of the partition window passed by Dagster (--vars '{min_date: ..., max_date: ...}', end exclusive),
    widened by `lookback_days` before the window. Without vars (a bare `dbt build`) every row qualifies. -#}
{% macro partition_window(column, lookback_days=0) -%}
  {%- if var('min_date', none) is not none -%}
    ({{ column }} >= cast('{{ var("min_date") }}' as date) - {{ lookback_days }}
     and {{ column }} < cast('{{ var("max_date") }}' as date))
  {%- else -%}
    true
  {%- endif -%}
{%- endmacro %}
