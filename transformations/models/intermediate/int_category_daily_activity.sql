-- Views and purchases per category and day. Uncategorized events are kept under a
-- NULL category so that the total of all views per day can be derived from here.

select
    category,
    event_date,
    count(*) filter (where event_type = 'view') as views,
    count(*) filter (where event_type = 'purchase') as purchases
from {{ ref('stg_events') }}
group by category, event_date
