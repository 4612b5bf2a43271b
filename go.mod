module github.com/protolab/protolab-tui

go 1.26.8

require (
	github.com/gopacket/gopacket v1.7.7
	github.com/gorilla/websocket v1.5.3
	golang.org/x/crypto v0.58.0
)

require (
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
