package pitr

import (
	"sort"
	"time"
)

// StanzaInfo is one stanza of `pgbackrest info --output=json`.
type StanzaInfo struct {
	Name    string           `json:"name"`
	Cipher  string           `json:"cipher"`
	Status  Status           `json:"status"`
	Archive []ArchiveRange   `json:"archive"`
	Backup  []PhysicalBackup `json:"backup"`
	DB      []struct {
		ID       int    `json:"id"`
		SystemID uint64 `json:"system-id"`
		Version  string `json:"version"`
	} `json:"db"`
}

// Status is pgBackRest's status of a stanza: code 0 is ok, 1 missing stanza path, 2 no valid
// backups, 3 missing stanza data, 4 different cipher, 99 other.
type Status struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// ArchiveRange is the WAL a stanza's repository holds for one database history.
type ArchiveRange struct {
	// ID is "<major>-<history>", the archive's directory.
	ID  string `json:"id"`
	Min string `json:"min"`
	Max string `json:"max"`
}

// PhysicalBackup is one backup in the repository.
type PhysicalBackup struct {
	Label string `json:"label"`
	Type  Kind   `json:"type"`
	// Prior is the backup a diff or incr depends on.
	Prior     string `json:"prior"`
	Error     bool   `json:"error"`
	Timestamp struct {
		Start int64 `json:"start"`
		Stop  int64 `json:"stop"`
	} `json:"timestamp"`
	Archive struct {
		Start string `json:"start"`
		Stop  string `json:"stop"`
	} `json:"archive"`
	Info struct {
		// Size is the database's size; Repository.Size what the backup stores (compressed).
		Size       int64 `json:"size"`
		Delta      int64 `json:"delta"`
		Repository struct {
			Size  int64 `json:"size"`
			Delta int64 `json:"delta"`
		} `json:"repository"`
	} `json:"info"`
}

// Started is when the backup began.
func (b PhysicalBackup) Started() time.Time { return time.Unix(b.Timestamp.Start, 0).UTC() }

// Stopped is when the backup ended: the earliest moment it can be restored to.
func (b PhysicalBackup) Stopped() time.Time { return time.Unix(b.Timestamp.Stop, 0).UTC() }

// Oldest is the backup that ended first, and whether there is one.
func (s StanzaInfo) Oldest() (PhysicalBackup, bool) {
	bs := s.Sorted()
	if len(bs) == 0 {
		return PhysicalBackup{}, false
	}
	return bs[0], true
}

// Sorted is the stanza's backups, oldest first.
func (s StanzaInfo) Sorted() []PhysicalBackup {
	bs := append([]PhysicalBackup(nil), s.Backup...)
	sort.Slice(bs, func(i, j int) bool { return bs[i].Timestamp.Stop < bs[j].Timestamp.Stop })
	return bs
}

// RepoEntry is one entry of `pgbackrest repo-ls --output=json`.
type RepoEntry struct {
	Type string `json:"type"`
	Size int64  `json:"size"`
	// Time is the modification time in seconds since the epoch (the object's upload time).
	Time int64 `json:"time"`
}
