"""Process-wide compute settings shared by training, the CLI and the web service: how many threads
the process may use, and the device checks a multi-process run needs before it starts."""
from __future__ import annotations

import os

from prism import config as C


def limit_threads(n: int) -> None:
    """At most `n` threads for torch's intra-op pool and OpenCV's (colour conversion, resizing):
    on a CPU shared with other work, more threads than free cores stall each other."""
    import cv2
    import torch
    torch.set_num_threads(n)
    cv2.setNumThreads(n)


def check_devices(t: dict) -> None:
    """Fail with the fix, before any process starts, where a multi-process run could only hang or
    crash later: more CPU processes than cores, a MASTER_PORT already taken."""
    devices = t["devices"]
    if t["accelerator"] == "cpu" and isinstance(devices, int) and devices > (os.cpu_count() or 1):
        raise C.ConfigError(f"train.devices={devices} CPU processes, but this machine has {os.cpu_count()} cores: "
                            f"use --devices {os.cpu_count()} or fewer")
    port = os.environ.get("MASTER_PORT")
    # one machine only: on a worker node MASTER_ADDR is another machine's, nothing to bind here
    if port and devices != 1 and t["num_nodes"] == 1 and "LOCAL_RANK" not in os.environ:
        import socket
        with socket.socket() as sock:
            try:
                sock.bind((os.environ.get("MASTER_ADDR", "127.0.0.1"), int(port)))
            except OSError:
                raise C.ConfigError(f"MASTER_PORT={port} is in use (another run?): set MASTER_PORT to a free "
                                    f"port, or unset it to let PRISM pick one") from None
