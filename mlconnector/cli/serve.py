"""``mlconnector serve`` and ``mlconnector qwc``: the Web Connector endpoint and its file."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mlconnector.cli.context import app_context, console, handle_errors
from mlconnector.errors import ConfigError, ConfigProblem, RefusedError

if TYPE_CHECKING:
    from mlconnector.soap.session import SessionEnd

log = logging.getLogger("mlconnector.cli")


def _port_in_range(value: int | None) -> int | None:
    if value is not None and not 0 <= value <= 65535:
        raise typer.BadParameter(f"{value} is not a port: use 0 to 65535 (0: any free port)")
    return value


@handle_errors
def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Option("--host", metavar="HOST", help="Address to listen on (default: qbwc.host, 127.0.0.1)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", metavar="PORT", callback=_port_in_range,
                     help="Port to listen on, 0 to 65535 (default: qbwc.port, 8080; 0: any free port)."),
    ] = None,
    certfile: Annotated[
        Path | None,
        typer.Option("--certfile", metavar="FILE", help="TLS certificate (PEM); serve HTTPS. Needs --keyfile."),
    ] = None,
    keyfile: Annotated[
        Path | None, typer.Option("--keyfile", metavar="FILE", help="TLS private key (PEM) for --certfile.")
    ] = None,
) -> None:
    """Serve the QuickBooks Web Connector endpoint at /qbwc until Ctrl-C.

    The WSDL is at /qbwc?wsdl and the support page at /support. Register it with the file from
    mlconnector qwc. Each Web Connector session prints one line when it ends.
    """
    import ssl

    from mlconnector.soap.server import make_wsgi_app
    from mlconnector.soap.server import serve as run_server
    from mlconnector.soap.session import QbwcService
    from mlconnector.soap.work import make_settings, make_work

    app_ctx = app_context(ctx)
    config = app_ctx.config()
    if certfile is None and keyfile is None and (config.qbwc.certfile or config.qbwc.keyfile):
        # [qbwc] certfile/keyfile: HTTPS without typing the files in the scheduled task
        certfile = Path(config.qbwc.certfile) if config.qbwc.certfile else None
        keyfile = Path(config.qbwc.keyfile) if config.qbwc.keyfile else None
    _check_tls_files(certfile, keyfile)
    settings = make_settings(config)
    store = app_ctx.store()
    out = console()

    def session_ended(end: SessionEnd) -> None:
        out.print(session_line(end), markup=False)
        out.file.flush()
        scheduler.alert_soon()  # tell a person what newly needs them ([notify]), outside the call

    # The schedule ([schedule] pulls) and the alert check run beside the server, each round on its own
    # connection to the state file; a silent Web Connector never ends a session, so only this timer sees it.
    from mlconnector.services.schedule import Scheduler

    scheduler = Scheduler(app_ctx.paths, config)
    service = QbwcService(store, make_work(store, config), settings, on_session_end=session_ended)
    wsgi_app = make_wsgi_app(lambda: service)
    bound_host = host or config.qbwc.host

    def ready(url: str) -> None:
        out.print(f"Serving the Web Connector at {url} (WSDL: {url}?wsdl). Ctrl-C stops.", markup=False)
        if not certfile and bound_host not in ("127.0.0.1", "localhost", "::1"):
            out.print("Note: plain HTTP on a non-loopback address; the Web Connector needs HTTPS there.",
                      markup=False)
        out.file.flush()

    bound_port = config.qbwc.port if port is None else port  # 0: any free port (the OS picks it)
    scheduler.start()
    if config.schedule.pull_at or config.schedule.pull_every_minutes:
        every = f"every {config.schedule.pull_every_minutes} min" if config.schedule.pull_every_minutes else ""
        times = ", ".join(config.schedule.pull_at)
        out.print(f"Pulling from Expensify by itself: {' and '.join(p for p in (times and 'at ' + times, every) if p)}"
                  " (local time; [schedule] in config.toml).", markup=False)
    try:
        run_server(wsgi_app, bound_host, bound_port,
                   certfile=str(certfile) if certfile else None, keyfile=str(keyfile) if keyfile else None,
                   on_ready=ready)
    except ssl.SSLError as exc:
        from mlconnector.services.certificate import CERT_FIX

        raise RefusedError(f"cannot use the certificate {certfile} ({exc.reason or exc})", hint=CERT_FIX) from None
    except OSError as exc:
        raise _listen_error(exc, bound_host, bound_port) from None
    finally:
        scheduler.stop()
    out.print("Stopped.", markup=False)


def _check_tls_files(certfile: Path | None, keyfile: Path | None) -> None:
    """Refuse a lone certificate or key, and a pair serve could not use, naming why."""
    from mlconnector.services.certificate import CERT_FIX, tls_pair_problem

    if bool(certfile) != bool(keyfile):
        raise ConfigError([ConfigProblem("--certfile/--keyfile", "give both or neither", "pass both files for HTTPS")])
    if certfile is not None and keyfile is not None:
        problem = tls_pair_problem(certfile, keyfile)
        if problem:
            raise RefusedError(f"cannot use the certificate {certfile} ({problem})", hint=CERT_FIX)


def _listen_error(exc: OSError, host: str, port: int) -> RefusedError:
    """Why serve cannot listen: cheroot keeps only the text of the bind error, so bind again to learn its errno."""
    import socket

    from mlconnector.services.check import address_problem, try_bind

    cause = exc if exc.errno is not None or isinstance(exc, socket.gaierror) else try_bind(host, port)
    if cause is None:  # free again by now: say what cheroot said
        return RefusedError(f"cannot listen on {host}:{port}: {' '.join(str(exc).split())}",
                            hint="try again, or choose another --port")
    problem, fix = address_problem(cause, host, port)
    return RefusedError(problem, hint=fix)


def session_line(end: SessionEnd, tz: dt.tzinfo | None = None) -> str:
    """``2026-11-29 14:03:12 +01:00  session of USER (company file F): 3 min 2 s, posted 12, failed 0, ...``.

    The time is local (``tz``: tests fix it) with its UTC offset; the counts are closeConnection's summary.
    """
    from mlconnector.services.check import age_text

    ended = end.ended.astimezone(tz)
    offset = ended.strftime("%z") or "+0000"
    stamp = f"{ended:%Y-%m-%d %H:%M:%S} {offset[:3]}:{offset[3:5]}"
    company = f"company file {end.company_file}" if end.company_file else "the company file open in QuickBooks"
    summary = end.summary.removeprefix("ml-connector: ").rstrip(".")
    text = f"{stamp}  session of {end.user} ({company}): {age_text(end.ended - end.started)}, "
    text += summary[:1].lower() + summary[1:]
    if end.reason:
        text += f"; stopped: {end.reason.rstrip('.')}"
    return text


@handle_errors
def qwc(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option("--url", metavar="URL",
                     help="The AppURL the Web Connector calls (default: qbwc.public_url, else localhost)."),
    ] = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="FILE", help="Where to write the .qwc file.")
    ] = Path("mlconnector.qwc"),
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
