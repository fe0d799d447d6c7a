-- Every calendar day between the first and the last event day, so rolling windows
-- over day-level aggregates see days without events as zeros instead of gaps.

select
    first_event_date + cast(day_offset as integer) as snapshot_date
from {{ ref('int_event_date_bounds') }},
    range(last_event_date - first_event_date + 1) as offsets(day_offset)
