"""Developer and operator tools: the launcher behind `make run` and a command-line client."""
