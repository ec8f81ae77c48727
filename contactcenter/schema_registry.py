"""Every module that declares tables, in one list. Alembic's env (autogenerate) and the schema
tests read `metadata` from here, so it holds every table however few features a process loads.
A new models module goes in this list; tests/unit/test_layering.py fails until it does."""

from __future__ import annotations

from types import ModuleType

from sqlalchemy import MetaData

from . import audit
from .agency import models as agency_models
from .agents import models as agents_models
from .callbacks import models as callbacks_models
from .cases import models as cases_models
from .ivr import models as ivr_models
from .notify import models as notify_models
from .queues import models as queues_models
from .schema import Base
from .supervisor import models as supervisor_models
from .telephony import models as telephony_models
from .web import models as web_models

MODEL_MODULES: tuple[ModuleType, ...] = (
    audit, agency_models, agents_models, callbacks_models, cases_models, ivr_models,
    notify_models, queues_models, supervisor_models, telephony_models, web_models,
)
metadata: MetaData = Base.metadata
