# The separate public OMERO.web (walkthrough "Publishing data using OMERO.web").
# The public user's password is a secret: keep it out of version control, e.g. in a
# group_data file only the deploy machine has, or pass it with --data.
omero_web_server_host = "omero.example.org"
omero_web_public_enabled = True
omero_web_public_user = "public-reader"
omero_web_public_password = "change-me"
omero_web_public_url_filter = "^/(webgateway/(?!(archived_files|download_as))|webclient/(?!(script_ui|ome_tiff|figure_script))|api)"
omero_web_public_cache_enabled = True
omero_web_publications = {"schleicher-et-al-2017": "project-27936"}
omero_web_nginx_server_name = "public.example.org"
