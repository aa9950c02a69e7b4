"""Read scalars back from TensorBoard event files with tensorboardX's own protobufs (no TensorFlow needed)."""

import glob
import os
import struct
from collections import defaultdict
from typing import Dict, List, Tuple

from tensorboardX.proto import event_pb2


def read_scalars(directory: str) -> Dict[str, List[Tuple[int, float]]]:
    """tag -> [(step, value), ...] from every events file in ``directory``."""
    scalars: Dict[str, List[Tuple[int, float]]] = defaultdict(list)
    for path in sorted(glob.glob(os.path.join(directory, "events.out.tfevents.*"))):
        with open(path, "rb") as handle:
            data = handle.read()
        offset = 0
        while offset < len(data):  # record: length (8) + crc (4) + payload + crc (4)
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            event = event_pb2.Event.FromString(data[offset + 12:offset + 12 + length])
            offset += 16 + length
            for value in event.summary.value:
                scalars[value.tag].append((event.step, value.simple_value))
    return scalars
