"""The case feature's app state (set in cases/plugin.py and cases/email_plugin.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .email_intake import EmailIntake
from .estimates import Estimates
from .media import MediaStore
from .store import ApiKeys, CaseStore

if TYPE_CHECKING:
    from .webform import FormRules

CASE_STORE = web.AppKey("case_store", CaseStore)
API_KEYS = web.AppKey("api_keys", ApiKeys)
# when requests like a case are actually done (cases/estimates.py)
ESTIMATES = web.AppKey("estimates", Estimates)
EMAIL_INTAKE = web.AppKey("email_intake", EmailIntake)
# photos sent with requests (cases/media.py); the origins allowed to call Open311 from a browser
# ("*" for any), parsed from CC_OPEN311_CORS_ORIGINS (cases/http.py)
MEDIA_STORE = web.AppKey("media_store", MediaStore)
OPEN311_CORS = web.AppKey("open311_cors", frozenset[str])
# the citizen web form's token key and spam limits (cases/webform.py)
CITIZEN_FORM: web.AppKey[FormRules] = web.AppKey("citizen_form")
