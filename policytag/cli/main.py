"""The ``policytag`` command. A thin layer: each area registers its own subcommands
from its ``commands`` module, and every command calls library functions."""

from __future__ import annotations

import importlib
import sys

import typer

from policytag.errors import PolicytagError

app = typer.Typer(
    name="policytag",
    help="Segment Chinese science-popularization policy documents and tag clauses by theme and measure type.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

@app.command()
def version() -> None:
    """Print the policytag version."""
    from policytag import __version__

    typer.echo(__version__)


# Modules that define ``register(app: typer.Typer)``. Each area owns its module.
COMMAND_MODULES = [
    "policytag.cli.segment",      # segment
    "policytag.cli.labels",       # labels validate | stats | agreement | build
    "policytag.cli.train",        # train, evaluate
    "policytag.cli.predict",      # predict, export-onnx
    "policytag.cli.serve",        # serve
    "policytag.cli.corrections",  # corrections ..., models ..., retrain, review-queue
    "policytag.cli.analysis",     # compare, agencies, targets
]

for _name in COMMAND_MODULES:
    try:
        importlib.import_module(_name).register(app)
    except ModuleNotFoundError as e:  # an area not built yet must not break the others
        if e.name != _name:
            raise


def main() -> None:
    try:
        app()
    except PolicytagError as e:
        typer.secho(f"error: {e}", fg="red", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.secho("interrupted; nothing half-written was left behind", fg="yellow", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
