"""Container test targets for omeroweb-deploy's integration tests and demo.

- :mod:`tests.infra.engine`: make sure a Docker engine answers (install/start it as root).
- :mod:`tests.infra.images`: build minimal Debian server images with debootstrap, cached
  by recipe hash.
- :mod:`tests.infra.targets`: start systemd (SSH) and plain (``docker exec``) target containers.
"""
