"""``connector completion bash|zsh|fish``: the shell completion script, from click itself."""

from __future__ import annotations

import click

__all__ = ["completion"]

SHELLS = ("bash", "zsh", "fish")


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the script that completes connector's commands, options and arguments in SHELL.

    \b
    Load it in the current shell:
      eval "$(connector completion bash)"        # bash
      eval "$(connector completion zsh)"         # zsh
      connector completion fish | source        # fish
    \b
    Or keep it, so every new shell has it:
      connector completion bash > ~/.local/share/bash-completion/completions/connector
      connector completion zsh > "${fpath[1]}/_connector"
      connector completion fish > ~/.config/fish/completions/connector.fish
    """
    from click.shell_completion import get_completion_class

    from connector.cli import cli

    found = get_completion_class(shell)
    if found is None:  # click knows every shell of SHELLS
        raise click.UsageError(f"no completion for {shell}")
    script = found(cli, {}, "connector", "_CONNECTOR_COMPLETE").source()
    click.echo(script, nl=not script.endswith("\n"))
