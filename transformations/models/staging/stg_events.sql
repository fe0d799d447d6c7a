-- Typed, deduplicated events: the only model that reads the raw Parquet files.
-- Producers may replay an event (at-least-once delivery), so the earliest copy of
-- each event_id wins; rows without a user or a time cannot be placed in any feature.

with source as (

    select * from {{ source('raw', 'events') }}

),

typed as (

    select
        cast(event_id as varchar) as event_id,
        cast(user_id as bigint) as user_id,
        cast(session_id as varchar) as session_id,
        lower(cast(event_type as varchar)) as event_type,
        cast(item_id as bigint) as item_id,
        cast(category as varchar) as category,
        cast(price as double) as price,
        lower(cast(device as varchar)) as device,
        cast(country as varchar) as country,
        -- Naive UTC keeps date arithmetic independent of the session time zone.
        timezone('UTC', cast(ts as timestamptz)) as event_ts
    from source
    where user_id is not null
      and ts is not null
      and event_id is not null

),

deduplicated as (

    select *
    from typed
    qualify row_number() over (
        partition by event_id
        order by event_ts, session_id, event_type
    ) = 1

)

select
    *,
    cast(event_ts as date) as event_date
from deduplicated
