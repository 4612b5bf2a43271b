// Package protolab is the module's root. It carries the lab VM's
// Vagrantfile, so that an installed protolab-tui brings the VM up from any
// folder (the vagrant provider writes it into the lab's state directory
// when the folder it is given holds none).
package protolab

import _ "embed" // the Vagrantfile

// Vagrantfile is the repository's Vagrantfile: the lab VM (CentOS Stream 9
// family), the apps' ports forwarded, provisioned by the matching
// provision/ script (which the provision package carries).
//
//go:embed Vagrantfile
var Vagrantfile []byte
