# An existing OMERO.server (walkthrough 4.8.7 to 4.8.10): only these client settings are
# applied here; OMERO.web is not installed on hosts that are only in this group.
omero_web_omero_server_config = {
    "omero.client.ui.menu.dropdown.leaders.label": "Owners",
    "omero.client.ui.menu.dropdown.colleagues.label": "Members",
    "omero.client.ui.menu.dropdown.everyone.label": "All Members",
    "omero.client.ui.tree.orphans.name": "Orphaned images",
}
omero_web_omero_server_config_append = {"omero.client.scripts_to_ignore": ["/my_scripts/script.py"]}
# Per-group download restrictions need an admin login:
# omero_web_omero_server_group_config = {15: {"omero.policy.binary_access": "-read,+write,+image"}}
# omero_web_omero_server_admin_password = "..."  (keep it out of version control)
