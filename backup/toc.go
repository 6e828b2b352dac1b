package backup

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// readTOC reads the header and table of contents at the start of a pg_dump custom-format
// archive from r and returns exactly those bytes. They hold the schema (the definitions
// pg_restore's pre-data and post-data sections run) but no table data, which follows them.
//
// It is what lets a streamed restore run the post-data section (indexes, constraints) with
// pg_restore --jobs: parallel pg_restore needs a seekable file, and a file holding only the
// header and TOC, in memory, is enough for the sections that read no data.
//
// The layout is pg_dump's (src/bin/pg_dump/pg_backup_archiver.c, ReadHead and ReadToc) for
// archive versions 1.14 to 1.16 (pg_dump 12 to 18); another version is an error and the
// caller restores without the split. On an error it returns the bytes it consumed.
func readTOC(r *bufio.Reader) ([]byte, error) {
	t := &tocReader{r: r}
	if err := t.read(); err != nil {
		return t.buf.Bytes(), err
	}
	return t.buf.Bytes(), nil
}

func (t *tocReader) read() error {
	magic := t.bytes(5)
	if t.err == nil && string(magic) != "PGDMP" {
		return errors.New("not a pg_dump custom-format archive")
	}
	vmaj, vmin := t.byte(), t.byte()
	t.byte() // revision
	t.intSize, t.offSize = int(t.byte()), int(t.byte())
	if t.err != nil {
		return t.err
	}
	version := int(vmaj)<<8 | int(vmin)
	if vmaj != 1 || vmin < 14 || vmin > 16 || t.intSize < 1 || t.intSize > 8 || t.offSize < 1 || t.offSize > 8 {
		return fmt.Errorf("archive version %d.%d (int %d, offset %d bytes) is not one this reader knows", vmaj, vmin, t.intSize, t.offSize)
	}
	if format := t.byte(); t.err == nil && format != 1 {
		return fmt.Errorf("archive format %d is not custom (1)", format)
	}
	if version >= 1<<8|15 {
		t.byte() // compression algorithm
	} else {
		t.int() // compression level
	}
	for range 7 { // creation time: sec, min, hour, mday, mon, year, isdst
		t.int()
	}
	t.str() // database name
	t.str() // server version
	t.str() // pg_dump version
	entries := t.int()
	if t.err == nil && (entries < 0 || entries > 10_000_000) {
		return fmt.Errorf("archive claims %d TOC entries", entries)
	}
	for i := 0; i < entries && t.err == nil; i++ {
		t.int()       // dump id
		t.int()       // had a data dumper
		for range 4 { // table oid, oid, tag, desc
			t.str()
		}
		t.int()       // section
		for range 6 { // defn, drop statement, copy statement, namespace, tablespace, table AM
			t.str()
		}
		if version >= 1<<8|16 {
			t.int() // relkind
		}
		t.str() // owner
		t.str() // "false" (formerly WITH OIDS)
		for t.err == nil && t.str() {
		} // dependencies, ended by a NULL string
		t.byte() // data offset flag
		t.bytes(t.offSize)
	}
	if t.err != nil {
		return fmt.Errorf("reading the archive's table of contents: %w", t.err)
	}
	return nil
}

// tocReader reads pg_dump's integers and strings, keeping every byte read; the first error
// sticks.
type tocReader struct {
	r                *bufio.Reader
	buf              bytes.Buffer
	intSize, offSize int
	err              error
}

func (t *tocReader) bytes(n int) []byte {
	if t.err != nil {
		return nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(t.r, b); err != nil {
		t.err = err
		return nil
	}
	t.buf.Write(b)
	return b
}

func (t *tocReader) byte() byte {
	b := t.bytes(1)
	if b == nil {
		return 0
	}
	return b[0]
}

// int reads a sign byte and intSize little-endian bytes.
func (t *tocReader) int() int {
	sign := t.byte()
	b := t.bytes(t.intSize)
	if b == nil {
		return 0
	}
	var v [8]byte
	copy(v[:], b)
	n := int(binary.LittleEndian.Uint64(v[:]))
	if sign != 0 {
		n = -n
	}
	return n
}

// str reads a length-prefixed string and reports whether it was not NULL (length -1).
func (t *tocReader) str() bool {
	n := t.int()
	if t.err != nil || n < 0 {
		return false
	}
	if n > 1<<30 {
		t.err = fmt.Errorf("a string of %d bytes", n)
		return false
	}
	t.bytes(n)
	return t.err == nil
}
