"""One ASGI app: the REST API, the Gradio web app mounted at `config.ui_path`, metrics around both."""
from __future__ import annotations

import contextlib
import logging

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

import prism
from prism.serve.config import ServeConfig
from prism.serve.metrics import MetricsMiddleware
from prism.serve.models import ModelStore
from prism.serve.service import Service

log = logging.getLogger("prism.serve")


def create_app(config: ServeConfig | None = None, store: ModelStore | None = None) -> FastAPI:
    """The whole service. `store` defaults to the bundled models plus `config.models_dir`."""
    from prism.serve.api import add_api
    config = config or ServeConfig()
    service = Service.create(config, store)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        service.close()

    app = FastAPI(title="PRISM", version=prism.__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="GAN image-to-image models as a service: one POST per task "
                              "(tasks with a loaded model only), the loaded models, health and metrics.")
    app.state.service = service
    add_api(app, service)
    if config.cors_origins:  # off unless asked for: browsers then refuse cross-site calls
        from fastapi.middleware.cors import CORSMiddleware
        app.add_middleware(CORSMiddleware, allow_origins=config.cors_origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["*"])
    if config.ui_path:
        from prism.serve.ui import mount_ui
        mount_ui(app, service)

    add_offline_docs(app)

    @app.get("/", include_in_schema=False)
    def root():
        return RedirectResponse(config.ui_path or "/docs")

    # outermost, so 413s from the body limit and errors from the web app are counted too
    app.add_middleware(MetricsMiddleware, metrics=service.metrics, ui_path=config.ui_path, routes_of=app)
    return app


def add_offline_docs(app: FastAPI) -> None:
    """/docs with Swagger UI's scripts and styles from the installed fastapi-offline package (its
    static files only): FastAPI's default page loads them from a CDN, so it stays blank offline."""
    from pathlib import Path

    import fastapi_offline
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    static = Path(fastapi_offline.__file__).parent / "static"
    app.mount("/docs-static", StaticFiles(directory=static), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} API",
                                   swagger_js_url="/docs-static/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-static/swagger-ui.css",
                                   swagger_favicon_url="/docs-static/favicon.png")
