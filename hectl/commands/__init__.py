"""One module per command; ``hectl.cli.COMMANDS`` maps names to them."""
