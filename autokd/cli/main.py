"""The ``autokd`` command. Heavy libraries (torch, Ray, Optuna) load inside each command only,
so ``autokd --help`` stays fast."""

from __future__ import annotations

import sys
import warnings

import click

from autokd import __version__
from autokd.cli.calibrate_cmd import calibrate
from autokd.cli.compare_cmd import compare
from autokd.cli.layers_cmd import layers
from autokd.cli.search_cmd import export, resume, search, show, studies
from autokd.cli.train_cmd import teacher, train


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="autokd")
def cli() -> None:
    """autokd: search knowledge-distillation strategies for your teacher/student pair.

    \b
    Typical use:
      autokd search --budget 100         search on the built-in MNIST-1D task
      autokd export NAME -o best.yaml    write the best strategy as a config
      autokd train --config best.yaml    train a student with it
    """


for command in (search, resume, studies, show, export, compare, calibrate, train, teacher, layers):
    cli.add_command(command)


def main(argv=None) -> None:
    """Console entry point: user mistakes print one line and exit with code 2, no traceback."""
    from autokd.errors import AutokdError
    from autokd.search.interrupts import end_stuck_processes

    end_stuck_processes()  # Ctrl-C always ends a command, even one whose clean-up hangs
    warnings.showwarning = _show_warning
    try:
        cli.main(args=argv, prog_name="autokd", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:  # a bad flag, value or argument: one line, as autokd's own errors
        click.echo(f"error: {_one_line(exc.format_message()).rstrip('.')}{_help_hint(exc)}", err=True)
        sys.exit(exc.exit_code)
    except AutokdError as exc:
        click.echo(f"error: {_one_line(str(exc))}", err=True)
        sys.exit(2)
    except OSError as exc:  # the machine refused: a read-only folder, a full disk, a missing file
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        click.echo(f"error: {_one_line(exc.strerror or str(exc))}{where}", err=True)
        sys.exit(2)
    except Exception as exc:
        if not _is_storage_failure(exc):
            raise
        # the study storage refused a read or write (read-only database, locked, lost connection)
        cause = exc.__cause__ if type(exc).__module__.startswith("optuna") and exc.__cause__ is not None else exc
        click.echo(f"error: the study storage failed: {_one_line(str(getattr(cause, 'orig', None) or cause))}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


_PACKAGE = __file__.rsplit("cli", 1)[0]  # the autokd package folder, with its trailing separator
_python_showwarning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """autokd's own warnings as one ``warning:`` line (not Python's file:line: Category: format);
    other libraries' as Python shows them."""
    if not str(filename).startswith(_PACKAGE):
        _python_showwarning(message, category, filename, lineno, file, line)
        return
    text = str(message)
    click.echo(f"warning: {_one_line(text[len('warning: '):] if text.startswith('warning: ') else text)}", err=True)


def _is_storage_failure(exc: Exception) -> bool:
    """SQLAlchemy's errors, and Optuna's wrapping of them (StorageInternalError)."""
    module = type(exc).__module__.split(".")[0]
    return module == "sqlalchemy" or (module == "optuna" and type(exc).__name__ == "StorageInternalError")


def _help_hint(exc: click.ClickException) -> str:
    ctx = getattr(exc, "ctx", None)
    return f" (see '{ctx.command_path} --help')" if ctx is not None else ""


def _one_line(text: str, limit: int = 2000) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


if __name__ == "__main__":
    main()
