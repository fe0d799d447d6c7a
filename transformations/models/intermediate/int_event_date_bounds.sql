-- The dataset's first and last event day: every dense spine ends on the last day,
-- so features of inactive users keep ageing until the newest data we have.

select
    min(event_date) as first_event_date,
    max(event_date) as last_event_date
from {{ ref('stg_events') }}
