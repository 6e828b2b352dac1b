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
		if _, _, ppid, ok := procStat(child); ok && ppid == pid {
			_ = syscall.Kill(-child, syscall.SIGKILL)
			_ = syscall.Kill(child, syscall.SIGKILL)
		}
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

// procStat reads a process's command name, state and parent from /proc/<pid>/stat
// ("pid (comm) state ppid ..."; comm may hold spaces and parentheses).
func procStat(pid int) (comm, state string, ppid int, ok bool) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", "", 0, false
	}
	s := string(raw)
	lp, rp := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if lp < 0 || rp < lp {
		return "", "", 0, false
	}
	f := strings.Fields(s[rp+1:]) // state, ppid, pgrp, ...
	if len(f) < 2 {
		return "", "", 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	return s[lp+1 : rp], f[0], ppid, err == nil
}
