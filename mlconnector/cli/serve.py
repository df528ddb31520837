"""``mlconnector serve`` and ``mlconnector qwc``: the Web Connector endpoint and its file."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from mlconnector.cli.context import app_context, console, handle_errors
from mlconnector.errors import ConfigError, ConfigProblem, RefusedError

log = logging.getLogger("mlconnector.cli")


@handle_errors
def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on (default: qbwc.host, 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port to listen on (default: qbwc.port, 8080).")] = None,
    certfile: Annotated[
        Path | None, typer.Option("--certfile", help="TLS certificate (PEM); serve HTTPS. Needs --keyfile.")
    ] = None,
    keyfile: Annotated[Path | None, typer.Option("--keyfile", help="TLS private key (PEM) for --certfile.")] = None,
) -> None:
    """Serve the QuickBooks Web Connector endpoint at /qbwc until Ctrl-C.

    The WSDL is at /qbwc?wsdl and the support page at /support. Register it with the file from
    mlconnector qwc.
    """
    from mlconnector.soap.server import make_wsgi_app
    from mlconnector.soap.server import serve as run_server
    from mlconnector.soap.session import QbwcService
    from mlconnector.soap.work import make_settings, make_work

    if bool(certfile) != bool(keyfile):
        raise ConfigError([ConfigProblem("--certfile/--keyfile", "give both or neither", "pass both files for HTTPS")])
    for option, file in (("--certfile", certfile), ("--keyfile", keyfile)):
        if file is not None and not file.is_file():
            raise ConfigError([ConfigProblem(option, f"{file} is not a file", "pass the PEM file's path")])
    app_ctx = app_context(ctx)
    config = app_ctx.config()
    settings = make_settings(config)
    store = app_ctx.store()
    service = QbwcService(store, make_work(store, config), settings)
    wsgi_app = make_wsgi_app(lambda: service)
    out = console()
    bound_host = host or config.qbwc.host

    def ready(url: str) -> None:
        out.print(f"Serving the Web Connector at {url} (WSDL: {url}?wsdl). Ctrl-C stops.", markup=False)
        if not certfile and bound_host not in ("127.0.0.1", "localhost", "::1"):
            out.print("Note: plain HTTP on a non-loopback address; the Web Connector needs HTTPS there.",
                      markup=False)

    bound_port = config.qbwc.port if port is None else port  # 0: any free port, as the tests use
    try:
        run_server(wsgi_app, bound_host, bound_port,
                   certfile=str(certfile) if certfile else None, keyfile=str(keyfile) if keyfile else None,
                   on_ready=ready)
    except OSError as exc:
        raise RefusedError(f"cannot listen on {bound_host}:{bound_port}: {exc.strerror or exc}",
                           hint="choose another --port or stop the program using it") from None
    out.print("Stopped.", markup=False)


@handle_errors
def qwc(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option("--url", help="The AppURL the Web Connector calls (default: qbwc.public_url, else localhost)."),
    ] = None,
    output: Annotated[Path, typer.Option("--output", help="Where to write the .qwc file.")] = Path("mlconnector.services.qwc"),
) -> None:
    """Write the .qwc file that adds ml-connector to the QuickBooks Web Connector.

    OwnerID and FileID are created once and kept in the state file, so the file can be written again
    without the Web Connector treating it as a new application.
    """
    from mlconnector.services.qwc import write_qwc

    app_ctx = app_context(ctx)
    config = app_ctx.config()
    target = url or config.qbwc.public_url or f"http://localhost:{config.qbwc.port}/qbwc"
    urls = write_qwc(app_ctx.store(), output, target, username=config.qbwc.username,
                     run_every_minutes=config.qbwc.run_every_minutes)
    out = console()
    out.print(f"Wrote {output} for {urls.app_url} (support page {urls.support_url}).", markup=False)
    out.print("Next: open it with the QuickBooks Web Connector (Add an application), then enter the password.",
              markup=False)
