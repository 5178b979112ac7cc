"""The test bed shared by the integration tests and ``tools/`` (demo, benchmark, load test):
Debian targets in containers, and the real ``pyinfra`` command line run against them.
Below both: ``tools/`` never imports ``tests/``.

- :mod:`testbed.engine`: make sure a Docker engine answers (install/start it as root).
- :mod:`testbed.images`: build minimal Debian server images with debootstrap, cached
  by recipe hash.
- :mod:`testbed.targets`: start systemd (SSH) and plain (``docker exec``) target containers.
- :mod:`testbed.pyinfra_run`: run ``pyinfra`` on an inventory of targets, read its results.
- :mod:`testbed.browser`: a headless Chromium that sends nothing outside this machine.
- :mod:`testbed.cache`: the cache folder (images, Ice wheels) outside the clone.
"""
