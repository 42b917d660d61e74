"""The command-line entry point: `postillon serve|worker|db|keys|users|contacts`."""
