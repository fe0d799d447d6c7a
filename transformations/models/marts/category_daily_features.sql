{{ config(location=var('marts_dir') ~ '/category_daily_features.parquet') }}
{%- set windows = {'7d': 7, '30d': 30} -%}
-- Point-in-time category features, one row per category per dataset day (dense).
-- As for users, the row for day d becomes valid at feature_ts = d + 1 day 00:00 UTC.

with categories as (

    select distinct category
    from {{ ref('int_category_daily_activity') }}
    where category is not null

),

all_views as (

    -- Popularity is a share of every view, uncategorized ones included.
    select
        spine.snapshot_date,
        coalesce(sum(activity.views), 0) as views
    from {{ ref('int_date_spine') }} as spine
    left join {{ ref('int_category_daily_activity') }} as activity
        on activity.event_date = spine.snapshot_date
    group by spine.snapshot_date

),

all_views_7d as (

    select
        snapshot_date,
        sum(views) over (
            order by snapshot_date range between interval 6 days preceding and current row
        ) as views_7d
    from all_views

),

daily as (

    select
        categories.category,
        spine.snapshot_date,
        coalesce(activity.views, 0) as views,
        coalesce(activity.purchases, 0) as purchases
    from categories
    cross join {{ ref('int_date_spine') }} as spine
    left join {{ ref('int_category_daily_activity') }} as activity
        on activity.category = categories.category
        and activity.event_date = spine.snapshot_date

),

rolling as (

    select
        category,
        snapshot_date,
        {%- for suffix, days in windows.items() %}
        sum(views) over last_{{ suffix }} as views_{{ suffix }},
        sum(purchases) over last_{{ suffix }} as purchases_{{ suffix }}{{ ',' if not loop.last }}
        {%- endfor %}
    from daily
    window
        {%- for suffix, days in windows.items() %}
        last_{{ suffix }} as (
            partition by category order by snapshot_date
            range between interval {{ days - 1 }} days preceding and current row
        ){{ ',' if not loop.last }}
        {%- endfor %}

)

select
    cast(rolling.category as varchar) as category,
    cast(rolling.snapshot_date as date) as snapshot_date,
    timezone('UTC', cast(rolling.snapshot_date + 1 as timestamp)) as feature_ts,
    cast(rolling.views_7d as bigint) as views_7d,
    cast(rolling.purchases_7d as bigint) as purchases_7d,
    cast(rolling.views_30d as bigint) as views_30d,
    cast(rolling.purchases_30d as bigint) as purchases_30d,
    cast(rolling.purchases_30d / nullif(rolling.views_30d, 0) as double) as conversion_rate_30d,
    cast(rolling.views_7d / nullif(all_views_7d.views_7d, 0) as double) as popularity_7d
from rolling
inner join all_views_7d
    on all_views_7d.snapshot_date = rolling.snapshot_date
order by rolling.category, rolling.snapshot_date
