"""The simulator's RTSP server: a GStreamer RTSP server process, one mount per stream, driven over stdin.

Runs under the SYSTEM python3 (Debian's `python3-gi` and `gir1.2-gst-rtsp-server-1.0`), not the
project's interpreter, and imports nothing of the project: `simulator.rtsp` spawns it. It prints
`{"port": N}` once it listens, then reads one JSON command a line and answers each with one line:

    {"op": "set", "path": "/ID/main", "launch": "( videotestsrc ... ! rtph264pay name=pay0 )",
     "user": "admin", "password": "..."}
    {"op": "remove", "path": "/ID/main"}

Started with `auth` as its third argument, every mount needs RTSP Basic authentication with the
user and password given for it (as a camera does; a client without them gets 401 and retries
with its credentials); without it, mounts are open and credentials are ignored.

A mount is built on demand for each client (not shared), so a stream that stops after N seconds
stops N seconds after that client's PLAY, and a changed fault applies to the next client. The
process ends when its stdin closes, so it never outlives the simulator that started it.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    Gst.init(None)
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = sys.argv[2] if len(sys.argv) > 2 else "0"
    use_auth = len(sys.argv) > 3 and sys.argv[3] == "auth"
    server = GstRtspServer.RTSPServer()
    auth = GstRtspServer.RTSPAuth()
    if use_auth:
        server.set_auth(auth)  # no default token: anonymous clients are asked for credentials (401)
    known: set[str] = set()
    server.set_address(host)
    server.set_service(port)
    mounts = server.get_mount_points()
    if server.attach(None) == 0:
        print(json.dumps({"error": f"cannot listen on {host}:{port}"}), flush=True)
        return 1
    print(json.dumps({"port": server.get_bound_port()}), flush=True)
    loop = GLib.MainLoop()

    def apply(cmd: dict, done: threading.Event, answer: list[dict]) -> bool:
        try:
            path = str(cmd["path"])
            if cmd.get("op") == "set":
                factory = GstRtspServer.RTSPMediaFactory()
                factory.set_launch(str(cmd["launch"]))
                factory.set_shared(False)
                factory.set_eos_shutdown(True)
                if use_auth:
                    # a role per credential pair: every mount given the same pair lets it in
                    basic = GstRtspServer.RTSPAuth.make_basic(str(cmd["user"]), str(cmd["password"]))
                    role = "r" + hashlib.sha256(basic.encode()).hexdigest()[:16]
                    if basic not in known:
                        token = GstRtspServer.RTSPToken()
                        token.set_string("media.factory.role", role)
                        auth.add_basic(basic, token)
                        known.add(basic)
                    perms = GstRtspServer.RTSPPermissions()
                    perms.add_role(role)
                    perms.add_permission_for_role(role, "media.factory.access", True)
                    perms.add_permission_for_role(role, "media.factory.construct", True)
                    factory.set_permissions(perms)
                mounts.remove_factory(path)
                mounts.add_factory(path, factory)
            elif cmd.get("op") == "remove":
                mounts.remove_factory(path)
            else:
                raise ValueError(f"unknown op {cmd.get('op')!r}")
            answer.append({"ok": True})
        except Exception as e:  # the parent reads the reason
            answer.append({"ok": False, "error": f"{type(e).__name__}: {e}"})
        done.set()
        return False

    def read_commands() -> None:
        for line in sys.stdin:
            try:
                cmd = json.loads(line)
            except ValueError:
                print(json.dumps({"ok": False, "error": "not JSON"}), flush=True)
                continue
            done, answer = threading.Event(), list[dict]()
            GLib.idle_add(apply, cmd, done, answer)
            done.wait()
            print(json.dumps(answer[0]), flush=True)
        GLib.idle_add(loop.quit)

    threading.Thread(target=read_commands, daemon=True).start()
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
