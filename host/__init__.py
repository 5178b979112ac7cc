"""
pyinfra operations and facts the sections compose, their inputs passed in as arguments: the
per-host context the sections read the data through (``context``), facts (``facts``), one read of
the host's root-owned state (``snapshot``), who may change what (``ownership``), uploads that
trust nobody but root (``uploads``), OS packages and their lock (``packages``), services
(``service_manager``), upgrades and their rollback (``upgrade``) and the login page check
(``health``). Imports ``model``, never a section or ``run``.
"""
