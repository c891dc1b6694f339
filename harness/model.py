"""The pydantic base of every model read from a file: frozen, no unknown key, a field taken
by its name or its alias. A leaf, so that the experiment's models and the check kinds share it
without importing each other."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
