{#- Row-level invariant between columns; the failing rows are returned for debugging. -#}
{% test expression_is_true(model, expression) %}

select *
from {{ model }}
where not ({{ expression }})

{% endtest %}
