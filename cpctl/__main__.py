from cpctl.cli import cli

cli(prog_name="cpctl")
