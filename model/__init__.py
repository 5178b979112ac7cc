"""
The model: plain values in, plain values out, no pyinfra and no host (tests/unit/test_layers.py
reads this folder and refuses a pyinfra import). The inventory's data and its checks
(``settings``, ``checks``, ``cross_checks``), what counts as a secret (``secrecy``), the distro
profile (``distro_profile``), an install's paths (``omero_install``), the optional features'
contributions (``features``), OMERO.web's desired configuration and its diff (``web_config``),
and the unit and init.d script's values (``units``).
"""
