"""Reads a W&B offline run file (``RUN_DIR/wandb/offline-run-*/run-*.wandb``) back, for the tracking tests.

The file is a LevelDB-style log: a 7-byte header (":W&B", 0xBEE1, version), then 32 KiB blocks of records, each
record a 7-byte header (CRC-32C, little-endian length, type: 1 full, 2 first, 3 middle, 4 last) and its bytes; a
whole record is one ``wandb_internal_pb2.Record`` protobuf.
"""

from __future__ import annotations

import json
import struct
from typing import Any, Dict, Iterator, List

BLOCK = 32 * 1024
FILE_HEADER = 7
RECORD_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _payloads(data: bytes) -> Iterator[bytes]:
    assert data[:4] == b":W&B", "not a W&B run file"
    position, parts = FILE_HEADER, []
    while position + RECORD_HEADER <= len(data):
        left_in_block = BLOCK - position % BLOCK
        if left_in_block < RECORD_HEADER:  # block trailer: padding
            position += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[position:position + RECORD_HEADER])
        if kind == 0 and length == 0:
            break
        chunk = data[position + RECORD_HEADER:position + RECORD_HEADER + length]
        position += RECORD_HEADER + length
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            parts = [chunk]
        elif kind == MIDDLE:
            parts.append(chunk)
        elif kind == LAST:
            yield b"".join(parts + [chunk])


def read_run(path: str) -> Dict[str, List[Any]]:
    """``{"history": [{key: value}], "config": {key: value}, "summary": {key: value}, "files": [path]}``."""
    from wandb.proto import wandb_internal_pb2

    out: Dict[str, Any] = {"history": [], "config": {}, "summary": {}, "files": []}
    with open(path, "rb") as handle:
        data = handle.read()
    for payload in _payloads(data):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            out["history"].append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                                   for item in record.history.item})
        elif kind in ("config", "run"):  # the run record carries the config given to wandb.init
            update = record.config.update if kind == "config" else record.run.config.update
            out["config"].update({item.key: json.loads(item.value_json) for item in update})
        elif kind == "summary":
            out["summary"].update({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                                   for item in record.summary.update})
        elif kind == "files":
            out["files"].extend(item.path for item in record.files.files)
    return out
