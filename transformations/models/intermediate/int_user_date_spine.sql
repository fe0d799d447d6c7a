-- One row per user per day from the user's first event day to the dataset's last
-- event day: features must exist (and recency keep growing) on inactive days too.

with first_days as (

    select
        user_id,
        min(event_date) as first_event_date
    from {{ ref('int_user_daily_activity') }}
    group by user_id

)

select
    first_days.user_id,
    first_days.first_event_date,
    first_days.first_event_date + cast(offsets.day_offset as integer) as snapshot_date
from first_days
cross join {{ ref('int_event_date_bounds') }} as bounds
cross join lateral range(bounds.last_event_date - first_days.first_event_date + 1)
    as offsets(day_offset)
