// Command protolab-app runs one of the lab's web applications (an app kind
// speaking one protocol: see the protocol package) on its own — in a
// container built FROM scratch, or by hand with `go run ./apps --mode ws`.
// Every flag can also be set through the environment variable named in its
// help, which is how containers are configured. protolab-tui carries the same
// command (`protolab-tui app …`): see package appmain.
package main

import (
	"fmt"
	"os"

	"github.com/protolab/protolab-tui/apps/appmain"
)

func main() {
	if err := appmain.Run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "protolab-app:", err)
		os.Exit(1)
	}
}
