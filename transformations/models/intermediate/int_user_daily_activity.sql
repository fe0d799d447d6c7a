-- Event counts and latest timestamps per user and UTC day: the additive building
-- blocks that the marts roll up over day windows.

select
    user_id,
    event_date,
    count(*) as events,
    count(*) filter (where event_type = 'view') as views,
    count(*) filter (where event_type = 'add_to_cart') as carts,
    count(*) filter (where event_type = 'purchase') as purchases,
    coalesce(sum(price) filter (where event_type = 'purchase'), 0) as revenue,
    max(event_ts) as last_event_ts,
    max(event_ts) filter (where event_type = 'add_to_cart') as last_cart_ts,
    max(event_ts) filter (where event_type = 'purchase') as last_purchase_ts
from {{ ref('stg_events') }}
group by user_id, event_date
