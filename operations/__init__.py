"""omeroweb-deploy: one module per section of the OMERO.web installation walkthroughs."""
