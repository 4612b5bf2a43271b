// Package provision carries the lab-host provisioning scripts (Docker engine,
// tcpdump) in the binary, so the ssh and vagrant providers provision a host
// from an installed protolab-tui without its source tree.
package provision

import "embed"

// Scripts holds initial-provision-<os>.sh, by file name.
//
//go:embed *.sh
var Scripts embed.FS
