"""A drop-in plugin that adds a whole app, to prove `connector catalog` lists plugin apps."""

from collections.abc import Callable, Mapping
from typing import Any

from connector import hookimpl
from connector.apps import Action, App
from connector.catalog.model import Operation, Parameter


@hookimpl
def register_apps(register: Callable[[App], None]) -> None:
    op = Operation(
        name="weather.get-forecast",
        app="weather",
        method="GET",
        path="/forecast/{city}",
        summary="Get the forecast of a city",
        parameters=(
            Parameter(name="city", location="path", required=True, schema={"type": "string"}),
        ),
    )
    register(
        App(
            name="weather",
            title="Weather",
            operations={op.name: op},
            default_base_url="https://weather.example",
        )
    )


def _convert(params: Mapping[str, Any], context: Any) -> dict[str, float]:
    return {"fahrenheit": float(params["celsius"]) * 9 / 5 + 32}


@hookimpl
def register_actions(register: Callable[[Action], None]) -> None:
    register(
        Action(
            name="weather.to-fahrenheit",
            run=_convert,
            description="Convert a temperature.",
            params_schema={
                "type": "object",
                "required": ["celsius"],
                "properties": {"celsius": {"type": "number", "description": "Degrees Celsius."}},
            },
            writes=False,
        )
    )
