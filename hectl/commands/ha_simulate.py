"""``hectl ha simulate``."""

from __future__ import annotations

import click

from hectl.commands.options import format_options, pick_format
from hectl.context import AppContext
from hectl.ha import scenario
from hectl.output import Output


@click.command("simulate")
@click.argument("scenario_file", metavar="SCENARIO", type=click.Path(readable=False))  # load() says what is wrong: exit 3
@format_options
@click.pass_obj
def command(app: AppContext, scenario_file: str, fmt: str, as_json: bool) -> Output:
    """Run SCENARIO (a TOML file, see docs/simulate.md) on simulated hosts and print the timeline.

    The hosts run the real agent (state machine, score, on-storage records) on a
    virtual clock against simulated storage, sanlock and VMs. Exit 1 if the
    engine ever ran on two hosts at once, or stayed down too long after a fault
    while a host could run it.
    """
    result = scenario.run(scenario.load(scenario_file))
    data = {
        "scenario": result.scenario.name,
        "description": result.scenario.description,
        "timeline": [e._asdict() for e in result.timeline],
        "engine_host": result.engine_host,
        "downtime_s": result.downtime,
        "violations": list(result.violations),
        "lines": result.lines(),
    }
    return Output("simulate", data, pick_format(fmt, as_json), exit_code=1 if result.violations else 0)
