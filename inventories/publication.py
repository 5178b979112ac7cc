"""
Example: the walkthrough's "separate public web server" for published data, next to the
internal OMERO.web, both in front of one existing OMERO.server.

- ``web``: the internal OMERO.web (data in group_data/all.py and the distro groups);
- ``public_web``: a dedicated OMERO.web with the public user and publication redirects
  (group_data/public_web.py), so internal users keep their usual login;
- ``omero_server``: the OMERO.server; it only receives the server-side settings for OMERO
  clients (group_data/omero_server.py), never OMERO.web.

    pyinfra inventories/publication.py deploy.py
"""

web = ["web.example.org"]
public_web = ["public.example.org"]
omero_server = ["omero.example.org"]
