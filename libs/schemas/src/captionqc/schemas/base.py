"""Model bases shared by every contract."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Contract(BaseModel):
    """A wire contract: unknown fields are refused and strings are never coerced to numbers or booleans.

    Strict mode still accepts ISO-8601 strings for datetimes when parsing JSON, which is what the wire carries.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=False)
