"""
pyinfra runs this file before it loads the inventory. It installs this project's hooks into
pyinfra (the ``run`` package): every host's omeroweb-deploy data validated right after the
inventory is loaded, before any connection or change (bad data stops the run with every bad
key listed); one deploy at a time per host; a private temporary folder per run; the failed
hosts summed up at the end; and the changes to pyinfra's own behaviour, each checked against
the pyinfra it was read for.
"""

import run

run.install()
