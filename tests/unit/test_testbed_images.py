"""
The test images' recipes (``testbed/images.py``): Ubuntu suites from Ubuntu's archive as a fresh
server has them, and the Ubuntu archive keyring taken only from what Debian's signed release
file vouches for.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from testbed import images


@pytest.mark.parametrize("release", images.UBUNTU_RELEASES)
def test_ubuntu_images_come_from_ubuntus_archive_with_its_pockets(release):
    recipe = images.recipe(release)
    assert recipe["mirror"] == images.UBUNTU_MIRROR
    path, sources = recipe["sources"]
    for suite in (release, f"{release}-updates", f"{release}-security"):
        assert suite in sources
    assert "universe" in sources and images.UBUNTU_SECURITY_MIRROR in sources
    # 24.04's installer writes deb822 sources; the earlier ones a sources.list
    assert path == ("etc/apt/sources.list.d/ubuntu.sources" if release == "noble" else "etc/apt/sources.list")
    assert images.image_tag(release).startswith(f"{images.UBUNTU_IMAGE_REPOSITORY}:{release}-")


def test_debian_images_are_unchanged_by_ubuntus():
    assert images.recipe("bookworm")["mirror"] == images.MIRROR
    assert images.image_tag("bookworm").startswith(f"{images.IMAGE_REPOSITORY}:bookworm-")
    with pytest.raises(ValueError):
        images.recipe("xenial")


RELEASE_FILE = """Origin: Debian
Suite: stable
MD5Sum:
 d41d8cd98f00b204e9800998ecf8427e 0 main/binary-amd64/Packages.xz
SHA256:
 1111111111111111111111111111111111111111111111111111111111111111 10 main/binary-all/Packages.xz
 2222222222222222222222222222222222222222222222222222222222222222 20 main/binary-amd64/Packages.xz
"""


def test_the_package_list_hash_is_read_from_the_sha256_section():
    assert images._sha256_entry(RELEASE_FILE, "main/binary-amd64/Packages.xz") == "2" * 64
    with pytest.raises(RuntimeError):
        images._sha256_entry(RELEASE_FILE, "contrib/binary-amd64/Packages.xz")


def test_the_keyring_package_is_found_in_the_list_and_checked_by_hash():
    packages = ("Package: other\nVersion: 1\n\nPackage: ubuntu-keyring\nVersion: 2023.11.28.1-0.2\n"
                "Filename: pool/main/u/ubuntu-keyring/ubuntu-keyring_2023.11.28.1-0.2_all.deb\nSHA256: abc\n")
    stanza = images._package_stanza(packages, "ubuntu-keyring")
    assert stanza["Filename"].endswith("_all.deb") and stanza["SHA256"] == "abc"
    data = b"a package"
    assert images._checked(data, hashlib.sha256(data).hexdigest(), "x") == data
    with pytest.raises(RuntimeError, match="SHA-256"):
        images._checked(b"tampered", hashlib.sha256(data).hexdigest(), "x")


@pytest.mark.skipif(not Path(images.DEBIAN_KEYRING).exists(), reason="needs Debian's archive keyring (gpgv)")
def test_a_release_file_without_debians_signature_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "_download", lambda url: b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n"
                        + RELEASE_FILE.encode() + b"-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n")
    with pytest.raises(RuntimeError, match="signature check"):
        images._verified_release_file("trixie", tmp_path)


def test_threads_of_one_process_take_a_cache_lock_in_turn(tmp_path, monkeypatch):
    # four image builds of one run wanted the keyring's lock at once: each gets it, one at a time
    import threading
    import time

    from testbed import cache

    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    inside, most, done = [0], [0], []

    def take():
        with cache.file_lock("shared"):
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            time.sleep(0.05)
            inside[0] -= 1
        done.append(1)

    threads = [threading.Thread(target=take, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(done) == 4 and most[0] == 1
