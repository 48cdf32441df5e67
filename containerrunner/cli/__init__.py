"""The `containerrunner` command: run, start, stop, is-alive, exec, shell and images.

`main.main(argv)` is the entry point (console script and `python -m containerrunner`). The CLI
is the only part of containerrunner that prints or exits; each module has one job:

- `args`: the argument parser (ansible-runner's flags, one-line usage errors, help epilogs)
- `jobcmds`: run / start / stop / is-alive (a job on a private data dir)
- `daemon`: double fork, pidfile, stopping a daemonised job
- `progress`: what `run` shows: a live view on a TTY, plain lines, or JSON events
- `execcmd`: exec / shell (any command or a shell in the EE)
- `images`: images build / lock / list / inspect (the recipes packaged in containerrunner/recipes)
"""
