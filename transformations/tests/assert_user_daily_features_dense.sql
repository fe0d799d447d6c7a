-- Every user must have exactly one row per day from their first event day to the
-- dataset's last event day: a gap would make Feast serve a stale row for that day.

with per_user as (

    select
        user_id,
        min(snapshot_date) as first_snapshot_date,
        max(snapshot_date) as last_snapshot_date,
        count(*) as snapshot_rows
    from {{ ref('user_daily_features') }}
    group by user_id

),

first_events as (

    select
        user_id,
        min(event_date) as first_event_date
    from {{ ref('stg_events') }}
    group by user_id

)

select
    first_events.user_id,
    first_events.first_event_date,
    per_user.first_snapshot_date,
    per_user.last_snapshot_date,
    per_user.snapshot_rows
from first_events
left join per_user using (user_id)
cross join {{ ref('int_event_date_bounds') }} as bounds
where per_user.user_id is null
   or per_user.first_snapshot_date != first_events.first_event_date
   or per_user.last_snapshot_date != bounds.last_event_date
   or per_user.snapshot_rows != per_user.last_snapshot_date - per_user.first_snapshot_date + 1
