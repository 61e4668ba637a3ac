"""A real OpenLDAP ``slapd`` for the LDAP sign-in tests (Debian packages slapd, ldap-utils).

The test writes a ``slapd.conf`` and a directory (LDIF: people, groups, a service
account) into a temporary directory, loads it with ``slapadd`` and starts ``slapd`` on a
free loopback port — as the ``openldap`` user when run as root. The ``memberof`` overlay
keeps ``memberOf`` on the people, as Active Directory does.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from ldap3 import HASHED_SALTED_SHA
from ldap3.utils.hashed import hashed

from tests.server_util import free_port

BASE = "dc=zhiku,dc=test"
ADMIN_DN = f"cn=admin,{BASE}"
ADMIN_PW = "directory-admin-pw"
SERVICE_DN = f"cn=zhiku-svc,ou=services,{BASE}"
SERVICE_PW = "service-account-pw"

#: username → (password, groups, disabled)
PEOPLE: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "mei": ("mei-correct-horse", ("hr-staff",), False),
    "chen": ("chen-battery-staple", ("finance", "kb-editors"), False),
    "lin": ("lin-left-the-company", ("hr-staff",), True),
    "frank": ("frank-in-the-directory", ("finance",), False),  # also a local account
}


def terminate(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _ldif() -> str:
    out = [
        f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: zhiku test\ndc: zhiku\n"
    ]
    for ou in ("people", "groups", "services"):
        out.append(f"dn: ou={ou},{BASE}\nobjectClass: organizationalUnit\nou: {ou}\n")
    out.append(
        f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\n"
        f"objectClass: simpleSecurityObject\ncn: zhiku-svc\n"
        f"userPassword: {hashed(HASHED_SALTED_SHA, SERVICE_PW)}\n"
    )
    for name, (pw, _groups, disabled) in PEOPLE.items():
        out.append(
            f"dn: uid={name},ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: {name}\n"
            f"cn: {name}\nsn: {name}\nuserPassword: {hashed(HASHED_SALTED_SHA, pw)}\n"
            + ("employeeType: disabled\n" if disabled else "")
        )
    groups = sorted({g for _pw, gs, _d in PEOPLE.values() for g in gs})
    for g in groups:
        members = [n for n, (_pw, gs, _d) in PEOPLE.items() if g in gs]
        out.append(
            f"dn: cn={g},ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: {g}\n"
            + "".join(f"member: uid={m},ou=people,{BASE}\n" for m in members)
        )
    return "\n".join(out)


class Slapd:
    def __init__(self) -> None:
        slapd = shutil.which("slapd") or "/usr/sbin/slapd"
        if not Path(slapd).exists() or not shutil.which("slapadd", path="/usr/sbin:/usr/bin"):
            pytest.skip("OpenLDAP is not installed (Debian packages slapd, ldap-utils)")
        self.dir = Path(tempfile.mkdtemp(prefix="zhiku-slapd-"))
        data = self.dir / "data"
        data.mkdir()
        self.port = free_port()
        self.url = f"ldap://127.0.0.1:{self.port}"
        conf = self.dir / "slapd.conf"
        conf.write_text(
            "include /etc/ldap/schema/core.schema\n"
            "include /etc/ldap/schema/cosine.schema\n"
            "include /etc/ldap/schema/inetorgperson.schema\n"
            "modulepath /usr/lib/ldap\nmoduleload back_mdb\nmoduleload memberof\n"
            f"pidfile {self.dir}/slapd.pid\n"
            "database mdb\n"
            f'suffix "{BASE}"\nrootdn "{ADMIN_DN}"\nrootpw {ADMIN_PW}\n'
            f"directory {data}\nmaxsize 10485760\n"
            "overlay memberof\nmemberof-refint TRUE\n"
            "access to attrs=userPassword by anonymous auth by * none\n"
            "access to * by users read by * none\n",
            "utf-8",
        )
        (self.dir / "data.ldif").write_text(_ldif(), "utf-8")
        self.as_user: list[str] = []
        opts: list[str] = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("openldap")
            for p in (self.dir, data, conf, self.dir / "data.ldif"):
                os.chown(p, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "openldap", "--"]
            opts = ["-u", "openldap", "-g", "openldap"]
        # slapadd bypasses overlays: add the entries through the running server instead,
        # so that memberof maintains memberOf. Start empty, then ldapadd.
        self.proc = subprocess.Popen(
            ["/usr/sbin/slapd", "-d", "0", "-f", str(conf), "-h", self.url + "/", *opts],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.dir,
        )
        self._wait()
        subprocess.run(
            [
                "ldapadd",
                "-x",
                "-H",
                self.url,
                "-D",
                ADMIN_DN,
                "-w",
                ADMIN_PW,
                "-f",
                str(self.dir / "data.ldif"),
            ],
            check=True,
            capture_output=True,
        )

    def _wait(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"slapd exited: {err[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("slapd did not start")

    def stop(self) -> None:
        terminate(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)
