"""The FastAPI application: `/api/v1` routers, one error handler, the Gradio studio at `/`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI

from backend.deps import require_auth
from backend.errors import install_error_handlers
from backend.runs.router import router as runs_router
from backend.settings import Settings, get_settings

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None, *, with_ui: bool = True) -> FastAPI:
    settings = settings or get_settings()
    if settings.auth == "on" and settings.api_token is None:
        raise RuntimeError(
            "UNISD_AUTH is on but UNISD_API_TOKEN is not set: set a token, or run locally "
            "with UNISD_AUTH=off on 127.0.0.1"
        )
    app = FastAPI(title="UniSD Studio", version="0.1.0", openapi_url="/openapi.json")
    app.state.settings = settings
    install_error_handlers(app)

    public = APIRouter(prefix=API_PREFIX)

    @public.get("/health", tags=["service"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(public)
    app.include_router(runs_router, prefix=API_PREFIX, dependencies=[Depends(require_auth)])

    if with_ui:
        import gradio as gr

        from frontend.app import create_ui

        # Mounted last: the API routes above keep precedence over the UI's catch-all path.
        token = settings.api_token.get_secret_value() if settings.api_token else None
        app = gr.mount_gradio_app(app, create_ui(settings.resolved_api_url, token), path="/")
    return app
