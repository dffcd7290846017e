"""``python -m profiler.agent serve ...``: the agent without the rest of vidlat's CLI."""

from profiler.agent.cli import main

if __name__ == "__main__":
    main()
