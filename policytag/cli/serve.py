"""``policytag serve``: start the web app (the only place that calls ``launch()``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from policytag.errors import PolicytagError


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        model: Optional[Path] = typer.Option(
            None, "--model", "-m",
            help="Model directory to serve (written by `policytag train`). Default: the registry's production model."),
        host: Optional[str] = typer.Option(None, "--host", help="Address to listen on (configs/app.yaml: server.host; 0.0.0.0 for the network)."),
        port: Optional[int] = typer.Option(None, "--port", "-p", help="Port (configs/app.yaml: server.port)."),
        train_if_missing: bool = typer.Option(
            False, "--train-if-missing",
            help="If the registry has no production model, train the default model on labels/ and promote it first."),
        config: str = typer.Option("default", "--config", "-c",
                                   help="Training config used by --train-if-missing and by the app's retrain button."),
        db: Optional[Path] = typer.Option(None, "--db", help="Corrections store (SQLite). Default: $POLICYTAG_HOME/corrections.sqlite."),
        set_: list[str] = typer.Option([], "--set", help="Override configs/app.yaml, e.g. --set limits.max_chars=200000 (repeatable)."),
    ) -> None:
        """Start the web app: tag a document, see it highlighted, correct it, retrain."""
        from policytag.serving import app as webapp  # gradio: loaded only when serving
        from policytag.serving.workbench import public_host_check

        overrides = list(set_)
        overrides.append(f"retrain.config={config}")
        if db is not None:
            overrides.append(f"corrections.db={db}")
        cfg = webapp.load_app_config(overrides)
        server = cfg.get("server") or {}
        host = host or server.get("host", "127.0.0.1")
        refusal = public_host_check(host, cfg)
        if refusal:
            raise PolicytagError(refusal)
        if train_if_missing and model is None:
            from policytag.training.retrain import ensure_production_model

            import time

            t0 = time.monotonic()
            path = ensure_production_model(config)
            took = time.monotonic() - t0
            typer.echo(f"production model: {path}" + (f" (trained in {took / 60:.1f} min)" if took > 5 else ""))
        demo = webapp.build_app(model_dir=model, config=cfg)
        svc = demo.policytag_service  # type: ignore[attr-defined]  # set on the Blocks by build_app
        port = int(port or server.get("port", 7860))
        info = svc.model_info()
        typer.echo(f"model {info['version']} ({info.get('base_model') or info.get('backend')}) from {info['model_dir']}")
        typer.echo(f"corrections store: {info['corrections_db']}")
        typer.echo(f"policytag app: http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}/  (Ctrl+C to stop)")
        try:
            demo.launch(server_name=host, server_port=port, show_error=True, quiet=True,
                        **webapp.launch_options(cfg))
        except OSError as e:
            raise PolicytagError(f"cannot listen on {host}:{port} ({e}); choose another port with --port") from None
