"""
Example site inventory: one group per distro release, hosts are placeholders.

The group names only organise hosts and per-distro overrides (see group_data/); every
difference between distros (package manager, Python, Ice wheel, NGINX layout, service
manager, SELinux) is decided from each host's facts, never from its group.

    pyinfra inventories/example.py deploy.py
"""

centos7 = ["web-centos7.example.org"]
centos8 = ["web-centos8.example.org"]
rocky8 = ["web-rocky8.example.org"]
rocky9 = ["web-rocky9.example.org"]
almalinux8 = ["web-alma8.example.org"]
almalinux9 = ["web-alma9.example.org"]
ubuntu1804 = ["web-ubuntu1804.example.org"]
ubuntu2004 = ["web-ubuntu2004.example.org"]
ubuntu2204 = ["web-ubuntu2204.example.org"]
ubuntu2404 = ["web-ubuntu2404.example.org"]
debian9 = ["web-debian9.example.org"]
debian10 = ["web-debian10.example.org"]
debian11 = ["web-debian11.example.org"]
debian12 = ["web-debian12.example.org"]
debian13 = ["web-debian13.example.org"]
