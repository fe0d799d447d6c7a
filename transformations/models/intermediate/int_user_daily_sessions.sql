-- Session counts per user and session start day, additive so that the marts can
-- roll them up over day windows.

select
    user_id,
    session_date,
    count(*) as sessions,
    count(*) filter (where has_cart) as cart_sessions,
    count(*) filter (where is_abandoned_cart) as abandoned_carts,
    count(*) filter (where device = 'mobile') as mobile_sessions,
    sum(duration_seconds) as session_seconds
from {{ ref('int_sessions') }}
group by user_id, session_date
