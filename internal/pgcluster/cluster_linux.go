package pgcluster

import "syscall"

// childAttrs runs a PostgreSQL program as owner (when we are root), in its own process group
// so a terminal's Ctrl-C reaches us first and we stop it in order, and with a parent-death
// signal so that it stops even if this process is killed outright.
func childAttrs(o *owner) *syscall.SysProcAttr {
	attrs := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGINT}
	if o != nil {
		attrs.Credential = &syscall.Credential{Uid: uint32(o.uid), Gid: uint32(o.gid)}
	}
	return attrs
}
