"""Entry point: ``hectl`` and ``python -m hectl``."""

from __future__ import annotations

import sys


def main() -> None:
    from hectl.cli.fastpath import try_run

    if sys.argv[1:2] != ["__complete"]:  # TAB completion stays light (it never fails loudly anyway)
        from hectl.output import guard_stdout

        guard_stdout()
    code = try_run(sys.argv[1:])
    if code is None:
        from hectl.cli.root import main as cli_main

        code = cli_main(sys.argv[1:])
    sys.exit(code)


if __name__ == "__main__":
    main()
