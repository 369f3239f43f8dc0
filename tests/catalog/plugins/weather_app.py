"""A drop-in plugin that adds a whole app, to prove `connector catalog` lists plugin apps."""

from collections.abc import Callable

from connector import hookimpl
from connector.apps import App
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
