"""`ansim serve`: the center's server (review console and HMA-compatible API)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from ansim.casework.errors import CaseworkError
from ansim.commands.common import err, refusals


@refusals
def serve(
    host: Annotated[
        str, typer.Option(help="Address to bind (loopback unless you mean it).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8470,
    certfile: Annotated[Path | None, typer.Option(help="TLS certificate (PEM).")] = None,
    keyfile: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
    behind_tls_proxy: Annotated[
        bool, typer.Option(help="A TLS reverse proxy fronts this server: cookies get Secure.")
    ] = False,
    idle_timeout: Annotated[float, typer.Option(help="Minutes before an idle session ends.")] = 30,
    hma_no_auth: Annotated[
        bool,
        typer.Option(
            help="Let loopback callers hash and look up without a token (HMA clients "
            "such as Coop send none). Refused unless bound to loopback."
        ),
    ] = False,
    partner_rate: Annotated[float, typer.Option(help="Requests a second per partner.")] = 50,
    break_after: Annotated[int, typer.Option(help="Reveals per shift before a break prompt.")] = 20,
) -> None:
    """Serve the review console and the HMA-compatible API from this ansim home.

    Example: `ansim serve --port 8470` then open http://127.0.0.1:8470/ (accounts come
    from `ansim user add`). TLS: `--certfile cert.pem --keyfile key.pem`, or run behind a
    TLS proxy with `--behind-tls-proxy`.
    """
    import uvicorn
    from ansim.casework.smtp import is_loopback_host  # here: it loads smtplib and ssl
    from ansim.detector.descriptor import load_descriptor_model
    from ansim.pipeline.workspaces import open_workspace
    from ansim.server.app import ServerSettings, create_app

    if (certfile is None) != (keyfile is None):
        raise CaseworkError("give both --certfile and --keyfile, or neither")
    if hma_no_auth and not is_loopback_host(host):
        raise CaseworkError("--hma-no-auth is only allowed when bound to a loopback address")
    if not is_loopback_host(host) and certfile is None and not behind_tls_proxy:
        err.print(
            f"[yellow]warning:[/yellow] serving {host} without TLS: passwords and victim media "
            "would cross the network in the clear (use --certfile/--keyfile or a TLS proxy)"
        )
    load_descriptor_model()  # unusable weights: refused now, not at every uploaded image
    tls = certfile is not None
    settings = ServerSettings(
        secure_cookies=tls or behind_tls_proxy,
        idle_timeout_s=idle_timeout * 60,
        hma_no_auth=hma_no_auth,
        partner_rate=partner_rate,
        partner_burst=partner_rate * 2,
        break_after_reveals=break_after,
    )
    app = create_app(open_workspace(), settings, tls=tls)
    scheme = "https" if tls else "http"
    err.print(f"ansim serving on {scheme}://{host}:{port}/ (Ctrl-C stops)")
    uvicorn.run(
        app,
        host=host,
        port=port,
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
        log_level="warning",
        server_header=False,
        proxy_headers=behind_tls_proxy,
    )
