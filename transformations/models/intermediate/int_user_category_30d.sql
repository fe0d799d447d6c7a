{%- set window_days = 30 -%}
-- Each user's category mix over the {{ window_days }} days ending on each snapshot day.
-- A (user, category) rolling count only changes on an event day or {{ window_days }} days
-- later, when that day leaves the window. Computing it at those change points with a
-- RANGE window and filling the days up to the next change point yields exactly the
-- non-zero (user, category, day) counts, without a dense user x category x day grid or
-- a per-day self-join.

with daily as (

    select
        user_id,
        category,
        event_date,
        count(*) as events
    from {{ ref('stg_events') }}
    where category is not null
    group by user_id, category, event_date

),

change_points as (

    select user_id, category, event_date as point_date, events
    from daily

    union all

    select
        daily.user_id,
        daily.category,
        daily.event_date + {{ window_days }} as point_date,
        0 as events
    from daily
    cross join {{ ref('int_event_date_bounds') }} as bounds
    where daily.event_date + {{ window_days }} <= bounds.last_event_date

),

point_totals as (

    -- An event day and an expiry day can coincide: one row per change point.
    select
        user_id,
        category,
        point_date,
        sum(events) as events
    from change_points
    group by user_id, category, point_date

),

rolling as (

    select
        user_id,
        category,
        point_date,
        sum(events) over last_{{ window_days }}_days as events,
        lead(point_date) over per_category as next_point_date
    from point_totals
    window
        per_category as (partition by user_id, category order by point_date),
        last_{{ window_days }}_days as (
            per_category range between interval {{ window_days - 1 }} days preceding and current row
        )

),

windowed as (

    select
        rolling.user_id,
        rolling.category,
        rolling.point_date + cast(offsets.day_offset as integer) as snapshot_date,
        rolling.events
    from rolling
    cross join {{ ref('int_event_date_bounds') }} as bounds
    cross join lateral range(
        coalesce(rolling.next_point_date, bounds.last_event_date + 1) - rolling.point_date
    ) as offsets(day_offset)
    where rolling.events > 0

),

alphabetical as (

    -- Ties go to the alphabetically first category: it gets the highest order, so the
    -- arg_max over (events, category_order) below picks it.
    select
        category,
        row_number() over (order by category desc) as category_order
    from (select distinct category from daily)

)

select
    windowed.user_id,
    windowed.snapshot_date,
    arg_max(
        windowed.category,
        struct_pack(events := windowed.events, category_order := alphabetical.category_order)
    ) as top_category,
    max(windowed.events) / sum(windowed.events) as top_category_share,
    count(*) as distinct_categories,
    -- The whole mix, as a JSON object of counts keyed by category (alphabetical): a
    -- taste for every category, not only the top one, for any number of categories.
    cast(to_json(map_from_entries(
        list(struct_pack(k := windowed.category, v := windowed.events) order by windowed.category)
    )) as varchar) as category_events
from windowed
inner join alphabetical using (category)
group by windowed.user_id, windowed.snapshot_date
