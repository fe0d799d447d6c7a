"""Arrow tables of one simulated day, in the canonical schemas.

Ids are built by Arrow string kernels rather than Python f-strings: at millions of
events per chunk, formatting in Python would dominate the run time.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.generator.catalogue import Catalogue
from pipelines.generator.day import DayBatch
from pipelines.generator.population import COUNTRIES, Population
from tailor.core.events import DEVICES, EVENT_SCHEMA, EVENT_TYPES, GROUND_TRUTH_SCHEMA

_EVENT_TYPE_NAMES = pa.array(EVENT_TYPES, pa.string())
_DEVICE_NAMES = pa.array(DEVICES, pa.string())
_COUNTRY_NAMES = pa.array(COUNTRIES, pa.string())
_TIMESTAMP = pa.timestamp("us", tz="UTC")


def day_tables(
    batch: DayBatch,
    population: Population,
    catalogue: Catalogue,
    day: date,
    day_start_us: int,
) -> tuple[pa.Table, pa.Table]:
    """(events, ground truth) of one day.

    session_id = "s{user_id}-{yyyymmdd}-{rank}" and event_id = "{session_id}-{index}":
    deterministic, unique across days and readable when debugging a single user.
    """
    user_id = population.user_ids[batch.session_user]
    session_id = pc.binary_join_element_wise(
        "s", _text(user_id), f"-{day:%Y%m%d}-", _text(batch.session_rank), ""
    )
    event_session = pa.array(batch.event_session)
    event_user = batch.session_user[batch.event_session]
    event_session_id = pc.take(session_id, event_session)
    item_id = catalogue.item_ids(batch.event_category, batch.event_rank)
    events = pa.Table.from_arrays(
        [
            pc.binary_join_element_wise(event_session_id, "-", _text(batch.event_index), ""),
            pa.array(population.user_ids[event_user]),
            event_session_id,
            pc.take(_EVENT_TYPE_NAMES, pa.array(batch.event_type)),
            pa.array(item_id),
            pc.take(pa.array(catalogue.names, pa.string()), pa.array(batch.event_category)),
            pa.array(catalogue.prices[batch.event_category, batch.event_rank]),
            pc.take(_DEVICE_NAMES, pa.array(batch.session_device[batch.event_session])),
            pc.take(_COUNTRY_NAMES, pa.array(population.country[event_user])),
            pa.array(day_start_us + batch.event_offset_us, _TIMESTAMP),
        ],
        schema=EVENT_SCHEMA,
    )
    ground_truth = pa.Table.from_arrays(
        [
            session_id,
            pa.array(user_id),
            pa.array(day_start_us + batch.session_start_us, _TIMESTAMP),
            pa.array(batch.p_session),
            pa.array(batch.propensity_24h),
        ],
        schema=GROUND_TRUTH_SCHEMA,
    )
    return events, ground_truth


def _text(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())
