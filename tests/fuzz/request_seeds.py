#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_request: raw CoAP datagrams (RFC 7252) for the API."""
import os
import struct
import sys

GET, POST, PUT, DELETE, PATCH, IPATCH = 1, 2, 3, 4, 6, 7
OBSERVE, URI_PATH, CONTENT_FORMAT, URI_QUERY, BLOCK1 = 6, 11, 12, 15, 27


def option_bytes(number, previous, value):
    delta, length = number - previous, len(value)

    def nibble(n):
        if n < 13:
            return n, b""
        if n < 269:
            return 13, bytes([n - 13])
        return 14, struct.pack(">H", n - 269)

    d, d_ext = nibble(delta)
    l, l_ext = nibble(length)
    return bytes([(d << 4) | l]) + d_ext + l_ext + value


def message(code, path, query=(), payload=b"", observe=None, content_format=None, mid=1, token=b"\x01\x02"):
    options = []
    if observe is not None:
        options.append((OBSERVE, bytes([observe]) if observe else b""))
    for segment in path.strip("/").split("/"):
        options.append((URI_PATH, segment.encode()))
    if content_format is not None:
        options.append((CONTENT_FORMAT, bytes([content_format]) if content_format else b""))
    for q in query:
        options.append((URI_QUERY, q.encode()))
    out = bytes([0x40 | len(token), code]) + struct.pack(">H", mid) + token
    previous = 0
    for number, value in sorted(options, key=lambda o: o[0]):
        out += option_bytes(number, previous, value)
        previous = number
    if payload:
        out += b"\xff" + payload
    return out


NS = "api/v1/namespaces/default"
CM = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"seed","labels":{"app":"web"}},"data":{"a":"1"}}'
POD = (b'{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"nodeName":"n1","containers":'
       b'[{"name":"c","image":"busybox","livenessProbe":{"httpGet":{"path":"/","port":80}}}]}}')
DEPLOY = (b'{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"replicas":2,'
          b'"selector":{"matchLabels":{"app":"d"}},"template":{"metadata":{"labels":{"app":"d"}},'
          b'"spec":{"containers":[{"name":"c","image":"nginx:1.25"}]}}}}')
SEEDS = {
    "get-list": message(GET, NS + "/configmaps"),
    "get-one": message(GET, NS + "/configmaps/seed"),
    "get-selectors": message(GET, NS + "/pods", ["labelSelector=app=web,tier!=db", "fieldSelector=spec.nodeName=n1", "limit=2"]),
    "get-watch-replay": message(GET, NS + "/configmaps", ["watch=1", "resourceVersion=1"]),
    "observe": message(GET, NS + "/configmaps", observe=0),
    "observe-cancel": message(GET, NS + "/configmaps", observe=1),
    "create-configmap": message(POST, NS + "/configmaps", payload=CM, content_format=50),
    "create-pod": message(POST, NS + "/pods", payload=POD, content_format=50),
    "create-deployment": message(POST, "apis/apps/v1/namespaces/default/deployments", payload=DEPLOY, content_format=50),
    "replace": message(PUT, NS + "/configmaps/seed", payload=CM.replace(b'"seed"}', b'"seed","resourceVersion":"3"}'), content_format=50),
    "patch": message(PATCH, NS + "/configmaps/seed", payload=b'{"data":{"a":null,"b":"2"}}', content_format=52),
    "ipatch": message(IPATCH, NS + "/configmaps/seed", payload=b'{"metadata":{"labels":{"x":"y"}}}'),
    "status": message(PUT, NS + "/pods/p/status", payload=b'{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"status":{"phase":"Running"}}'),
    "delete": message(DELETE, NS + "/configmaps/seed", ["gracePeriodSeconds=0"]),
    "cluster-scoped": message(GET, "api/v1/nodes"),
    "bad-path": message(GET, "api/v1/namespaces/default/widgets/x/y/z"),
    "bad-query": message(GET, NS + "/pods", ["sortBy=name", "labelSelector=in (("]),
    "bad-json": message(POST, NS + "/configmaps", payload=b'{"apiVersion":"v1",', content_format=50),
    "well-known": message(GET, ".well-known/core"),
    "version": message(GET, "version"),
}

directory = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "request")
os.makedirs(directory, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(directory, name + ".coap"), "wb") as f:
        f.write(data)
