-- One row per session, dated by its first event. Its facts come from the events of
-- that first UTC day only: a session crossing midnight must not let the next day's
-- events (e.g. a purchase closing the cart) leak into the row dated by its start.

with session_days as (

    select
        user_id,
        session_id,
        event_date as session_date,
        min(event_ts) as started_at,
        max(event_ts) as ended_at,
        arg_min(device, event_ts) as device,
        count(*) as events,
        bool_or(event_type = 'add_to_cart') as has_cart,
        bool_or(event_type = 'purchase') as has_purchase
    from {{ ref('stg_events') }}
    group by user_id, session_id, event_date

)

select
    user_id,
    session_id,
    session_date,
    started_at,
    ended_at,
    (epoch_us(ended_at) - epoch_us(started_at)) / 1e6 as duration_seconds,
    device,
    events,
    has_cart,
    has_purchase,
    has_cart and not has_purchase as is_abandoned_cart
from session_days
qualify row_number() over (partition by user_id, session_id order by session_date) = 1
