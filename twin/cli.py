"""The `twin` command: a thin typer layer over the typed functions of each package.

Heavy imports (torch, llama.cpp) happen inside the commands, so `twin --help` is instant.
A `UserError` anywhere ends in one line on stderr and exit code 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

try:  # typer vendors click since 0.20; its exceptions live there
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

from twin import __version__, paths
from twin.errors import UserError

app = typer.Typer(
    name="twin",
    help="Learn how you write from your chat exports and serve a local model that answers like you.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals can hold private messages
    context_settings={"help_option_names": ["-h", "--help"]},
)


from twin.commands import bot, clients, pipeline, serving, share  # noqa: E402

# The order `twin --help` lists them: the first run, the pipeline, serving, clients, moving a twin, housekeeping.
for _name, _command in (
    ("demo", pipeline.demo_cmd),
    ("build", pipeline.build_cmd),
    ("ingest", pipeline.ingest_cmd),
    ("train", pipeline.train_cmd),
    ("persona", pipeline.persona_cmd),
    ("convert", pipeline.convert_cmd),
    ("calibrate", pipeline.calibrate_cmd),
    ("serve", serving.serve_cmd),
    ("chat", clients.chat_cmd),
    ("eval", clients.eval_cmd),
    ("export", share.export_cmd),
    ("pack", share.pack_cmd),
    ("unpack", share.unpack_cmd),
):
    app.command(_name)(_command)

service_app = typer.Typer(help="Run the daemon as a systemd user service.", no_args_is_help=True)
service_app.command("install")(serving.service_install)
service_app.command("uninstall")(serving.service_uninstall)
service_app.command("status")(serving.service_status)
app.add_typer(service_app, name="service")
app.add_typer(bot.bot_app, name="bot")

from twin.commands.jobs import jobs_app  # noqa: E402

app.add_typer(jobs_app, name="jobs")


@app.command("paths")
def paths_cmd() -> None:
    """Print the data, config and cache directories (XDG; TWIN_HOME moves them all)."""
    print(f"data    {paths.data_dir()}")
    print(f"config  {paths.config_file()}")
    print(f"cache   {paths.cache_dir()}")
    print(f"twins   {paths.twins_dir()}")


@app.command("version")
def version_cmd() -> None:
    """Print twin's version."""
    print(__version__)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `twin` script: every user error ends in one line on stderr and exit code 2."""
    # The stages show their own progress; transformers' per-file bars would interleave with it.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    paths.private_umask()  # twins hold private messages: nothing twin creates is readable by others
    try:
        code = app(args=argv, standalone_mode=False)
    except UserError as e:
        print(f"twin: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except OSError as e:
        # A stage that did not name its own failed write still ends in one line, not a traceback.
        from twin.files import is_write_error, write_error

        failed = Path(e.filename) if e.filename else paths.data_dir()
        if not is_write_error(e, failed if failed.is_dir() else failed.parent):
            raise
        print(f"twin: error: {write_error(e, failed, 'writing')}", file=sys.stderr)
        sys.exit(2)
    except click_exceptions.NoArgsIsHelpError as e:
        print(e.ctx.get_help() if e.ctx else e.format_message())
        sys.exit(0)
    except click_exceptions.UsageError as e:
        where = e.ctx.command_path if e.ctx else "twin"
        print(f"twin: error: {e.format_message()} (see `{where} --help`)", file=sys.stderr)
        sys.exit(2)
    except click_exceptions.ClickException as e:
        print(f"twin: error: {e.format_message()}", file=sys.stderr)
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("twin: interrupted", file=sys.stderr)
        sys.exit(130)
    # Like click's standalone mode, always exit: with a command's typer.Exit code, else 0.
    sys.exit(code if isinstance(code, int) else 0)
