# Data for every host of the inventories in this folder. Every key is documented in the
# data table of docs/configuration.md; anything not set here keeps its default.
#
# Connecting as a user with sudo rather than root:
# _sudo = True
#
# Behind a TLS-intercepting proxy, trust its CA (files on the control machine):
# omero_web_extra_ca_certificates = ["/usr/local/share/ca-certificates/proxy-ca.crt"]
#
# The OMERO.server this OMERO.web connects to:
# omero_web_server_host = "omero.example.org"
# omero_web_nginx_server_name = "omero.example.org"
