"""Emulator ports: firebase.json (moved by STACK_PORT_OFFSET) and a check that they are free."""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from stackkit.base import DEFAULT_PORTS, NEEDED, ROOT, StackError


def firebase_config() -> Path:
    """firebase.json, or with STACK_PORT_OFFSET=N a copy beside it with every port moved by N,
    so that several clones can run their stacks side by side."""
    offset = int(os.environ.get("STACK_PORT_OFFSET", "0") or 0)
    if not offset:
        return ROOT / "firebase.json"
    # The suite's own ports lie 5 to 400 apart (4400/4500, 8080/8085, 9099/9299...): offsets that
    # are multiples of 1000 never land one stack's port on another's.
    if offset % 1000:
        raise StackError(f"STACK_PORT_OFFSET={offset}: use a multiple of 1000 (e.g. 1000, 2000) so "
                         "side-by-side stacks never share a port")
    cfg = json.loads((ROOT / "firebase.json").read_text())
    emulators = cfg.setdefault("emulators", {})
    for name, default in {**DEFAULT_PORTS, "auth": 9099, "firestore": 8080, "functions": 5001,
                          "pubsub": 8085, "hosting": 5002}.items():
        if name == "firestore-websocket":
            continue
        entry = emulators.setdefault(name, {})
        entry["port"] = int(entry.get("port", default)) + offset
    fs = emulators.setdefault("firestore", {})
    fs["websocketPort"] = int(fs.get("websocketPort", 9150)) + offset
    # Beside firebase.json: firebase-tools resolves the config's relative paths from its folder.
    path = ROOT / f".firebase.offset-{offset}.json"
    path.write_text(json.dumps(cfg, indent=2))
    return path


def emulator_ports() -> dict[str, tuple[str, int]]:
    cfg = json.loads(firebase_config().read_text()).get("emulators", {})
    ports: dict[str, tuple[str, int]] = {}
    for name in (*NEEDED, "hub", "logging", "eventarc", "tasks"):
        entry = cfg.get(name, {})
        port = entry.get("port", DEFAULT_PORTS.get(name))
        if port:
            ports[name] = (entry.get("host", "127.0.0.1"), int(port))
    fs = cfg.get("firestore", {})
    ports["firestore-websocket"] = (fs.get("host", "127.0.0.1"), int(fs.get("websocketPort", 9150)))
    return ports


def check_ports(ports: dict[str, tuple[str, int]]) -> None:
    for name, (host, port) in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError:
                raise StackError(
                    f"port {port} ({name}) on {host} is already in use: stop whatever holds it "
                    f"(`ss -ltnp 'sport = :{port}'` shows it; another `scripts/stack up`?)"
                ) from None
