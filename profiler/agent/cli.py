"""``vidlat agent serve`` (also ``python -m profiler.agent serve``): run the agent on the device.

This module imports only the profiler core, so the agent runs on a device without torch.
"""

from __future__ import annotations

import ipaddress
import os

import click

from profiler.agent.runtime import DEFAULT_PRECISION, PRECISIONS, RUNTIMES
from profiler.agent.server import AgentConfig, AgentServer, new_token
from profiler.agent.wire import DEFAULT_PORT, TOKEN_ENV
from profiler.agent.worker import WorkerCrashed
from profiler.errors import VidlatError


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@click.group()
def agent() -> None:
    """The device agent: measures workloads sent by `vidlat profile` on a workstation."""


@agent.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on (0.0.0.0: every interface)")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port")
@click.option("--runtime", type=click.Choice(RUNTIMES), default="onnxruntime", show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="default when a request does not say")
@click.option("--precision", default=None, help="default when a request does not say (onnxruntime: f32; openvino: f32, f16, bf16; tensorrt: fp32, fp16, int8)")
@click.option("--max-upload-mb", type=click.FloatRange(min=0, min_open=True), default=64.0, show_default=True)
@click.option("--time-limit-s", type=click.FloatRange(min=0, min_open=True), default=300.0, show_default=True, help="per measurement")
@click.option("--busy-wait-s", type=click.FloatRange(min=0), default=2.0, show_default=True, help="how long a request waits for the device before 503 busy")
def serve(host: str, port: int, runtime: str, threads: int, precision: str | None, max_upload_mb: float, time_limit_s: float, busy_wait_s: float) -> None:
    """Serve measurements over HTTP until Ctrl-C.

    The token comes from $VIDLAT_AGENT_TOKEN, or is generated and printed once.
    """
    precision = precision or DEFAULT_PRECISION[runtime]
    if precision not in PRECISIONS[runtime]:
        raise click.BadParameter(f"'{precision}' for runtime {runtime}; allowed: {', '.join(PRECISIONS[runtime])}", param_hint="--precision")
    config = AgentConfig(host=host, port=port, runtime=runtime, threads=threads, precision=precision,
                         max_upload_mb=max_upload_mb, time_limit_s=time_limit_s, busy_wait_s=busy_wait_s)
    token = os.environ.get(TOKEN_ENV)
    generated = token is None
    server = AgentServer(config, token if token is not None else new_token())
    fingerprint = server.fingerprint
    click.echo(f"vidlat agent {fingerprint['agent']}: {runtime} {fingerprint.get(runtime, '')} on {fingerprint.get('cpu', '?')} ({fingerprint.get('os', '?')})")
    if generated:
        click.echo("token (generated; shown once). On the workstation run:")
        click.echo(f"  export {TOKEN_ENV}={server.token}")
    else:
        click.echo(f"token: from ${TOKEN_ENV}")
    if not _is_loopback(host):
        click.echo("warning: listening beyond this machine; anyone who reaches the port needs the token, and traffic is plain HTTP", err=True)
    try:
        server.worker.start()
        click.echo(f"listening on {server.url} (Ctrl-C stops)")
        server.serve_forever()
    except WorkerCrashed as exc:
        raise VidlatError(f"the agent's measuring process could not start: {exc}") from None
    except KeyboardInterrupt:
        click.echo("agent stopped")
    finally:
        server.server_close()


def main() -> None:
    """``python -m profiler.agent``: the agent's own entry point, with vidlat's one-line errors."""
    try:
        agent.main(prog_name="python -m profiler.agent", standalone_mode=False)
    except VidlatError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    except click.exceptions.Abort:
        raise SystemExit(130) from None
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
