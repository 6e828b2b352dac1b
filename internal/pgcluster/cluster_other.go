//go:build !linux

package pgcluster

import "syscall"

// childAttrs runs a PostgreSQL program in its own process group, as owner when we are root.
func childAttrs(o *owner) *syscall.SysProcAttr {
	attrs := &syscall.SysProcAttr{Setpgid: true}
	if o != nil {
		attrs.Credential = &syscall.Credential{Uid: uint32(o.uid), Gid: uint32(o.gid)}
	}
	return attrs
}

// killServer kills a postmaster's process group (where /proc does not show its children).
func killServer(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }
