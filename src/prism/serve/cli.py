"""`prism serve`: build the app and run it under uvicorn in this process."""
from __future__ import annotations

import logging

from prism.serve.config import ServeConfig

log = logging.getLogger("prism.serve")


def run_server(**options) -> None:
    import uvicorn

    from prism.serve.app import create_app
    from prism.serve.models import ModelStore
    config = ServeConfig(**options)
    if config.torch_threads:
        # process-wide, so set here and not in create_app: on a CPU shared with other work,
        # fewer threads avoid oversubscription (measured: 1 thread 10x faster than 2 beside training)
        from prism.runtime import limit_threads
        limit_threads(config.torch_threads)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    store = ModelStore.discover(config.models_dir, bundled=config.bundled, device=config.device)
    if not store.models:
        where = f"bundled models nor in {config.models_dir}" if config.models_dir else "bundled models (try --models DIR)"
        raise ValueError(f"no model to serve: none among the {where}")
    for m in store.models.values():
        log.info("serving %s (%s, %s)", m.name, m.task, m.source)
    if config.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("listening on %s: reachable from other machines; PRISM has no authentication", config.host)
    app = create_app(config, store)
    print(f"PRISM: web app http://{config.host}:{config.port}{config.ui_path or '/docs'}  "
          f"API http://{config.host}:{config.port}/v1  docs /docs", flush=True)
    uvicorn.run(app, host=config.host, port=config.port, log_level="info", server_header=False)
