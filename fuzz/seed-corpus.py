#!/usr/bin/env python3
"""Writes seed corpora for the fuzz targets into fuzz/corpus/<target>/ (not committed).

Parsers get the inputs of /work/shared/corpus/syslog-cases.jsonl and a few loghub lines;
decoders get framing-cases.jsonl and newline-joined syslog cases, in the decoder input
layout of loggr_core::syslog::checks::decoder_input: [max selector, split count, splits..., payload].
"""
import base64, hashlib, json, os, sys

CORPUS = os.environ.get("LOGGR_CORPUS", "/work/shared/corpus")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
PARSERS = ["rfc5424", "rfc3164", "rfc3339", "json", "auto"]
DECODERS = ["line_decoder", "octet_counting_decoder", "auto_framing_decoder"]


def write(target, data):
    folder = os.path.join(OUT, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def cases(name):
    with open(os.path.join(CORPUS, name)) as f:
        for line in f:
            case = json.loads(line)
            if "input_base64" in case:
                yield case, base64.b64decode(case["input_base64"])
            else:
                yield case, case["input"].encode()


inputs = [data for _, data in cases("syslog-cases.jsonl")]
for log in ["Linux_2k.log", "OpenSSH_2k.log", "Mac_2k.log"]:
    path = os.path.join(CORPUS, "loghub", log)
    if os.path.exists(path):
        with open(path, "rb") as f:
            inputs += f.read().splitlines()[:40]
inputs += [
    b'{"message":"m","facility":"auth","severity":3,"tags":["a"],"fields":{"n":1.5,"l":[1,"x",true]}}',
    b"2024-03-10T02:30:00 host app[1]: in the DST gap",
    b"<13>1 2024-01-01T00:00:00+23:59 h a p m [x@1 k=\"v\\\\\"] msg @[_PID=1 _UID=0]",
]
for data in inputs:
    for target in PARSERS:
        write(target, data)

for case, data in cases("framing-cases.jsonl"):
    for target in DECODERS:
        write(target, bytes([255, 0]) + data)
        write(target, bytes([8, 2, 3, 7]) + data)
joined = b"\n".join(inputs[:60]) + b"\n"
counted = b"".join(b"%d %s" % (len(d), d) for d in inputs[:60] if d)
for target in DECODERS:
    write(target, bytes([255, 0]) + joined)
    write(target, bytes([100, 3, 10, 1, 50]) + joined)
    write(target, bytes([255, 0]) + counted)
    write(target, bytes([60, 4, 5, 5, 40, 2]) + counted)
print("seeds written to", OUT, file=sys.stderr)
