"""A drop-in plugin that implements every hook, so the tests can prove each one takes effect."""

from collections.abc import Callable, Mapping
from typing import Any

from connector import hookimpl
from connector.apps import Action, App, RunContext
from connector.catalog.model import Operation, Parameter, TriggerEvent

__version__ = "0.0.1"


def backwards(value: Any) -> str:
    return str(value)[::-1]


async def say(params: Mapping[str, Any], context: RunContext) -> dict[str, Any]:
    """An async action: the engine awaits it."""
    return {"said": params["text"], "recipe": context.recipe}


ECHO_GET = Operation(
    name="echo.get-thing",
    app="echo",
    method="GET",
    path="/things/{thingId}",
    summary="Get a thing",
    parameters=(Parameter(name="thingId", location="path", required=True),),
)


@hookimpl
def register_filters(register: Callable[[str, Callable[..., Any]], None]) -> None:
    register("backwards", backwards)


@hookimpl
def register_actions(register: Callable[[Action], None]) -> None:
    register(
        Action(
            name="echo.say",
            run=say,
            description="Say something back.",
            params_schema={
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
                "additionalProperties": False,
            },
            writes=False,
        )
    )


@hookimpl
def register_apps(register: Callable[[App], None]) -> None:
    register(
        App(
            name="echo",
            title="Echo",
            operations={ECHO_GET.name: ECHO_GET},
            default_base_url="http://127.0.0.1:9/echo",
            base_url_env="ECHO_BASE_URL",
        )
    )


@hookimpl
def register_triggers(register: Callable[[TriggerEvent], None]) -> None:
    register(TriggerEvent(app="echo", event="said", description="Something was said."))
