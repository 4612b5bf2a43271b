package appmain

import (
	"fmt"
	"os"
	"path/filepath"
)

// Name is the executable name under which a binary carrying this package runs
// the app instead of its own main: the lab's FROM scratch image holds the
// binary as /protolab-app, whether it is protolab-app or protolab-tui.
const Name = "protolab-app"

// init runs the app when the binary was started as Name (busybox style), so
// any binary linking this package — protolab-tui, the docker provider's tests
// — is a working app image.
func init() {
	if filepath.Base(os.Args[0]) != Name {
		return
	}
	if err := Run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, Name+":", err)
		os.Exit(1)
	}
	os.Exit(0)
}
