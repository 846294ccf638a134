"""One module per command; ``hectl.cli.root.COMMANDS`` maps names to them."""
