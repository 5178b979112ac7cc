# Overrides for the almalinux8 group only. Facts already choose the package manager, Python,
# Ice wheel, NGINX layout and service manager: put here only what your site decides
# differently for these hosts, for example:
#
# omero_web_ice_source = "wheel"
# omero_web_ice_wheel = "/srv/wheels/almalinux8/zeroc_ice-3.6.5-cpXY-cpXY-linux_x86_64.whl"
