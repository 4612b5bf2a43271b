#!/usr/bin/env bash
# Regenerates the Go code of the lab's gRPC services (protocol/labrpc) from
# protocol/labrpc/protolab.proto. It needs protoc (Debian: protobuf-compiler);
# the two Go plugins are the module's tools (go.mod's tool lines), so their
# versions are pinned there.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { echo "protoc is missing: apt-get install -y protobuf-compiler" >&2; exit 1; }
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
go build -o "$bin/protoc-gen-go-grpc" google.golang.org/grpc/cmd/protoc-gen-go-grpc
PATH="$bin:$PATH" protoc -I protocol/labrpc \
  --go_out=protocol/labrpc --go_opt=paths=source_relative \
  --go-grpc_out=protocol/labrpc --go-grpc_opt=paths=source_relative \
  protocol/labrpc/protolab.proto
