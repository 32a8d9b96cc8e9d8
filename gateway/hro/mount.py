"""Everything the HRO work adds to the app, for one ``include_router`` in gateway/api/app.py:
the facade at ``/hro/{council}`` and its standard-API routes (triage, admin photos)."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.hro import routes, v1

router = APIRouter()
router.include_router(v1.router)
router.include_router(routes.router)
# (path pattern, body limit): the photo routes' exception to the gateway's body limit
LARGE_BODIES = routes.LARGE_BODIES
