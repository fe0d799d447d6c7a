{{ config(location=var('marts_dir') ~ '/user_daily_features.parquet') }}
{#- The windows and measures are declared once, in feature_repo/feature_views.py
    (BEHAVIOR_WINDOWS_DAYS, WINDOWED_MEASURES); `tailor transform` passes them here. -#}
{%- set windows = var('behavior_windows') -%}
{%- set measures = var('windowed_measures') -%}
-- Point-in-time user features, one row per user per day (dense). The row for day d
-- uses only events with event_date <= d and becomes valid at feature_ts = d + 1 day
-- 00:00 UTC, the moment the day is complete; Feast joins on that timestamp.

with daily as (

    select
        spine.user_id,
        spine.snapshot_date,
        spine.first_event_date,
        coalesce(activity.events, 0) as events,
        coalesce(activity.views, 0) as views,
        coalesce(activity.carts, 0) as carts,
        coalesce(activity.purchases, 0) as purchases,
        coalesce(activity.revenue, 0) as revenue,
        activity.last_event_ts,
        activity.last_cart_ts,
        activity.last_purchase_ts,
        coalesce(sessions.sessions, 0) as sessions,
        coalesce(sessions.cart_sessions, 0) as cart_sessions,
        coalesce(sessions.abandoned_carts, 0) as abandoned_carts,
        coalesce(sessions.mobile_sessions, 0) as mobile_sessions,
        coalesce(sessions.session_seconds, 0) as session_seconds
    from {{ ref('int_user_date_spine') }} as spine
    left join {{ ref('int_user_daily_activity') }} as activity
        on activity.user_id = spine.user_id
        and activity.event_date = spine.snapshot_date
    left join {{ ref('int_user_daily_sessions') }} as sessions
        on sessions.user_id = spine.user_id
        and sessions.session_date = spine.snapshot_date

),

rolling as (

    select
        user_id,
        snapshot_date,
        first_event_date,
        max(last_event_ts) over history as last_event_ts,
        max(last_cart_ts) over history as last_cart_ts,
        max(last_purchase_ts) over history as last_purchase_ts,
        {%- for suffix in windows %}
        {%- for measure in measures %}
        sum({{ measure }}) over last_{{ suffix }} as {{ measure }}_{{ suffix }},
        {%- endfor %}
        {%- endfor %}
        sum(abandoned_carts) over last_7d as abandoned_carts_7d,
        sum(abandoned_carts) over last_30d as abandoned_carts_30d,
        sum(cart_sessions) over last_30d as cart_sessions_30d,
        sum(mobile_sessions) over last_30d as mobile_sessions_30d,
        sum(session_seconds) over last_30d as session_seconds_30d
    from daily
    window
        history as (
            partition by user_id order by snapshot_date
            rows between unbounded preceding and current row
        ),
        {%- for suffix, days in windows.items() %}
        last_{{ suffix }} as (
            partition by user_id order by snapshot_date
            range between interval {{ days - 1 }} days preceding and current row
        ){{ ',' if not loop.last }}
        {%- endfor %}

),

with_feature_ts as (

    select
        *,
        cast(snapshot_date + 1 as timestamp) as feature_ts_utc
    from rolling

)

select
    cast(features.user_id as bigint) as user_id,
    cast(features.snapshot_date as date) as snapshot_date,
    timezone('UTC', features.feature_ts_utc) as feature_ts,
    cast(floor(epoch(features.last_event_ts)) as bigint) as last_event_epoch_s,
    cast(
        (epoch_us(features.feature_ts_utc) - epoch_us(features.last_event_ts)) / 3.6e9 as double
    ) as hours_since_last_event,
    cast(features.snapshot_date - features.first_event_date + 1 as integer) as tenure_days,
    {%- for suffix in windows %}
    {%- for measure, sql_type in measures.items() %}
    cast(features.{{ measure }}_{{ suffix }} as {{ sql_type }}) as {{ measure }}_{{ suffix }},
    {%- endfor %}
    {%- endfor %}
    cast(features.abandoned_carts_7d as bigint) as abandoned_carts_7d,
    cast(features.abandoned_carts_30d as bigint) as abandoned_carts_30d,
    cast(
        features.abandoned_carts_30d / nullif(features.cart_sessions_30d, 0) as double
    ) as cart_abandonment_rate_30d,
    cast(
        features.last_cart_ts is not null
        and (features.last_purchase_ts is null or features.last_cart_ts > features.last_purchase_ts)
        as integer
    ) as has_open_cart,
    cast(
        (epoch_us(features.feature_ts_utc) - epoch_us(features.last_purchase_ts)) / 3.6e9 as double
    ) as hours_since_last_purchase,
    cast(categories.top_category as varchar) as top_category_30d,
    cast(categories.top_category_share as double) as top_category_share_30d,
    cast(coalesce(categories.distinct_categories, 0) as bigint) as distinct_categories_30d,
    categories.category_events as category_events_30d,
    cast(
        features.session_seconds_30d / nullif(features.sessions_30d, 0) as double
    ) as mean_session_seconds_30d,
    cast(
        features.mobile_sessions_30d / nullif(features.sessions_30d, 0) as double
    ) as mobile_share_30d
from with_feature_ts as features
left join {{ ref('int_user_category_30d') }} as categories
    on categories.user_id = features.user_id
    and categories.snapshot_date = features.snapshot_date
order by features.user_id, features.snapshot_date
