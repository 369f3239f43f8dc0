"""``connector new recipe|test|sync``: start a file from a template that validates as written."""

from __future__ import annotations

import os
from pathlib import Path

import click

from connector.cli.common import fail, get_registry, plugins_dir_option

__all__ = ["new"]


def _folder(given: Path | None) -> Path:
    """``--dir``, else ``recipes/`` when the current folder has one, else the current folder."""
    if given is not None:
        return given
    return Path("recipes") if Path("recipes").is_dir() else Path(".")


def _schema_ref(target: Path, schema: str) -> str:
    """Where ``schemas/SCHEMA`` is, relative to ``target``'s folder, when a folder above it has
    one (a checkout of connector); else the schema shipped in the package, by its path."""
    folder = target.parent.resolve()
    for parent in (folder, *folder.parents):
        found = parent / "schemas" / schema
        if found.is_file():
            return os.path.relpath(found, folder)
    return str(Path(__file__).resolve().parent.parent / "schemas" / schema)


def _write(path: Path, text: str) -> None:
    if path.exists():
        fail(f"{path} exists; not overwritten (remove it, or choose another name or --dir)")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "x", encoding="utf-8") as out:
        out.write(text)
    click.echo(f"wrote {path}")


@click.group("new")
def new() -> None:
    """Start a recipe, its test or a sync declaration from a template.

    \b
    Each file validates as written (`connector validate` passes on it) and
    says in comments what to read and run next. Files go to --dir, else to
    recipes/ when the current folder has one, else to the current folder;
    an existing file is never overwritten.
    \b
      connector new recipe tag-new-contacts --trigger ghl.ContactCreate --action ghl.add-tags
      connector new test recipes/tag-new-contacts.yaml
      connector test recipes/tag-new-contacts.yaml
      connector new sync people
    \b
    Find triggers with `connector catalog list --triggers` and actions with
    `connector catalog search WORDS`.
    """


@new.command("recipe")
@click.argument("name")
@click.option(
    "--trigger",
    "trigger_name",
    required=True,
    metavar="APP.EVENT",
    help="What starts a run: connecteam.user_created, ghl.ContactCreate, manual.go, "
    "schedule.cron (`connector catalog list --triggers`).",
)
@click.option(
    "--action",
    "actions",
    multiple=True,
    metavar="OP",
    help="A step calling OP (ghl.create-task, connecteam.get-users, links.put; repeatable, in "
    "order). Default: a read of the trigger's app.",
)
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write NAME.yaml (default: recipes/ when it exists, else here).",
)
@plugins_dir_option
@click.pass_context
def recipe(
    ctx: click.Context, name: str, trigger_name: str, actions: tuple[str, ...], folder: Path | None
) -> None:
    """Write the recipe NAME.yaml: the trigger with a sample event, one step per --action with
    its required parameters filled in (optional ones commented out), and links to the docs.

    \b
    Required parameters take a trigger field of the same name when the event
    has one, the location from the environment (GHL_LOCATION_ID), the API
    document's example, else TODO-NAME with a comment to replace it.
    \b
      connector new recipe welcome-task --trigger connecteam.user_created \\
          --action ghl.upsert-contact --action ghl.create-task
      connector new recipe nightly --trigger schedule.cron --action connecteam.get-users
      connector validate recipes/welcome-task.yaml
      connector run recipes/welcome-task.yaml --sandbox --dry-run
    """
    from connector.language.scaffold import ScaffoldError, recipe_text, split_trigger

    registry, _ = get_registry(ctx)
    path = _folder(folder) / f"{name}.yaml"
    try:
        trigger = split_trigger(trigger_name, registry)
        chosen = list(actions) or [
            "ghl.get-contact" if trigger.app == "ghl" else "connecteam.get-users"
        ]
        text = recipe_text(name, trigger, chosen, registry, _schema_ref(path, "recipe.schema.json"))
    except ScaffoldError as exc:
        raise click.UsageError(str(exc)) from None
    _write(path, text.replace("THIS_FILE", str(path)))
    click.echo(f"next: connector validate {path}; connector new test {path}")


@new.command("test")
@click.argument("recipe_file", metavar="RECIPE", type=click.Path(dir_okay=False, path_type=Path))
@plugins_dir_option
@click.pass_context
def test(ctx: click.Context, recipe_file: Path) -> None:
    """Write tests/NAME.test.yaml beside RECIPE: one test that runs the recipe on its sample
    event and expects every step to succeed, with the APIs' answers inline (made from the API
    documents), so `connector test` runs it as written and sends nothing.

    \b
      connector new test recipes/welcome-task.yaml
      connector test recipes/welcome-task.yaml
    \b
    To test against real answers, give the test a `cassette:` and record it
    from the embedded sandbox: connector test --record recipes/tests/NAME.test.yaml
    """
    from connector.testing.scaffold import scaffold_test_file

    if not recipe_file.is_file():
        fail(f"{recipe_file}: no such recipe file")
    registry, _ = get_registry(ctx)
    path = recipe_file.parent / "tests" / f"{recipe_file.stem}.test.yaml"
    ref = _schema_ref(path, "recipe-test.schema.json")
    try:
        text = scaffold_test_file(recipe_file, path, registry, ref)
    except (OSError, ValueError) as exc:
        fail(f"{recipe_file}: cannot be read as a recipe: {exc}")
    _write(path, text)
    click.echo(f"next: connector test {path}")


@new.command("sync")
@click.argument("name")
@click.option("--tasks", is_flag=True, help="Pair their tasks too (GoHighLevel and quick tasks).")
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write NAME.sync.yaml (default: recipes/ when it exists, else here).",
)
def sync(name: str, tasks: bool, folder: Path | None) -> None:
    """Write the sync declaration NAME.sync.yaml: GoHighLevel contacts and Connecteam users
    paired by email, then phone, kept the same both ways, each choice commented (docs/sync.md).

    \b
      connector new sync people --tasks
      connector validate recipes/people.sync.yaml
      connector serve recipes/ --sandbox
    """
    from connector.language.scaffold import ScaffoldError, sync_text

    path = _folder(folder) / f"{name}.sync.yaml"
    try:
        text = sync_text(name, _schema_ref(path, "sync.schema.json"), tasks=tasks)
    except ScaffoldError as exc:
        raise click.UsageError(str(exc)) from None
    _write(path, text.replace("THIS_FILE", str(path)).replace("FOLDER", str(path.parent)))
    click.echo(f"next: connector validate {path}")
