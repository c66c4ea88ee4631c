// The Pod sandbox's "pause" process for the test cluster's real kubelet nodes (kubelet-node.sh):
// containerd's CRI plugin starts it first in every Pod to hold the Pod's namespaces. Built
// statically by install.sh (CGO_ENABLED=0) and packed into a one-file OCI image, since no
// registry is reachable to pull registry.k8s.io/pause from. It does what Kubernetes' own pause
// (a few lines of C) does: sleep until SIGINT or SIGTERM, and reap the zombies of a Pod that
// shares its process namespace.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println("fjord pause")
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "Warning: pause should be the first process")
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
