package pgcluster

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

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

// killServer kills a postmaster and its children with whatever they run. Each child of the
// postmaster leads a process group of its own (PostgreSQL calls setsid in every child), so
// the children are found by their parent: the postmaster is stopped first, so it cannot start
// new ones, then each child's group is killed, then the postmaster.
func killServer(pid int) {
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
		s := string(raw)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) >= 2 && f[1] == strconv.Itoa(pid) {
			_ = syscall.Kill(-child, syscall.SIGKILL)
			_ = syscall.Kill(child, syscall.SIGKILL)
		}
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}
